/** Count the store's compose calls while `fn` runs (a retried publish must not write its output again). */
import { storeFor } from '../../core/store';

export async function composesDuring<T>(root: string, fn: () => Promise<T>): Promise<{ result: T; composed: number }> {
  const store = storeFor(root);
  const compose = store.compose;
  let composed = 0;
  store.compose = async (...args) => {
    composed++;
    return compose.apply(store, args);
  };
  try {
    return { result: await fn(), composed };
  } finally {
    store.compose = compose;
  }
}
