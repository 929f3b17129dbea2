/**
 * What the planners of data-driven methods (AdaMerging's validate.ts, Frank-Wolfe's plan.ts) share: a folder from
 * a checkpoint URI, and turning a loader's error into one InputMismatchError line that names the thing.
 */
import { InputMismatchError } from '../pipeline/plan';
import { dirnameUri, normalizeUri } from '../store/uri';

/** A folder URI (a .safetensors or .json file's folder when given the file). */
export function folderOf(uri: string): string {
  const u = normalizeUri(uri).replace(/\/+$/, '');
  return /\.(safetensors|json)$/.test(u) ? dirnameUri(u) : u;
}

/** Refuse the inputs with this one line. */
export function bad(msg: string): never {
  throw new InputMismatchError(msg);
}

/** Loader errors (ModelError, DatasetError, SafetensorsError, NotFoundError…) become one line naming `what`. */
export async function about<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof InputMismatchError) throw e;
    const err = e as Error;
    if (/Error$/.test(err.name) && err.name !== 'Error' && err.name !== 'TypeError')
      throw new InputMismatchError(`${what}: ${err.message}`);
    throw e;
  }
}
