/**
 * Count the calls that write an output file from its parts (the store's compose, or publishStaged where shards
 * filled a staged file in place) while `fn` runs; `fail` makes call number `fail` throw instead (a worker that
 * died there). A retried publish must not write its output again.
 */
import { storeFor } from '../../core/store';

export async function composesDuring<T>(
  root: string,
  fn: () => Promise<T>,
  fail?: number,
): Promise<{ result: T; composed: number }> {
  const store = storeFor(root);
  const { compose, publishStaged } = store;
  let composed = 0;
  const count = (): void => {
    if (++composed === fail) throw new Error('test: the worker died here');
  };
  store.compose = async (...args) => {
    count();
    return compose.apply(store, args);
  };
  if (publishStaged)
    store.publishStaged = async (...args) => {
      count();
      return publishStaged.apply(store, args);
    };
  try {
    return { result: await fn(), composed };
  } finally {
    store.compose = compose;
    store.publishStaged = publishStaged;
  }
}
