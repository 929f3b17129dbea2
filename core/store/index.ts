/** Pick the store for a URI. Stores are created once per process. */
import { createHash } from 'node:crypto';
import { FileStore } from './file';
import { S3Store } from './s3';
import { Committed, Store } from './types';
import { normalizeUri } from './uri';

export * from './types';
export * from './uri';

let fileStore: FileStore | undefined;
let s3Store: S3Store | undefined;

export function storeFor(uri: string): Store {
  if (uri.startsWith('s3://')) return (s3Store ??= new S3Store());
  if (uri.startsWith('file://') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return (fileStore ??= new FileStore());
  throw new Error(`no store for '${uri}': use file://, s3:// or a plain path`);
}

/** Write a whole object atomically. */
export async function putObject(uri: string, bytes: Uint8Array): Promise<Committed> {
  const w = await storeFor(uri).writer(uri);
  try {
    await w.write(bytes);
    return await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/**
 * Read a whole object and parse it as JSON. A missing object throws NotFoundError (from the store); text that is
 * not JSON throws `invalid(reason)`, so each caller reports it with its own error type and wording.
 */
export async function readJson(uri: string, invalid: (reason: string) => Error): Promise<unknown> {
  const bytes = await storeFor(uri).readAll(uri);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw invalid((e as Error).message);
  }
}

/** sha256 of a whole object, streamed in 16 MiB ranges; `progress` gets the bytes hashed so far. */
export async function sha256Of(
  uri: string,
  size: number,
  chunk = 16 * 1024 * 1024,
  progress?: (done: number) => void | Promise<void>,
  expect?: string,
): Promise<string> {
  return sha256OfRange(uri, 0, size, chunk, progress, expect);
}

/** sha256 of bytes [offset, offset + length) of an object, streamed as sha256Of streams a whole one. */
export async function sha256OfRange(
  uri: string,
  offset: number,
  length: number,
  chunk = 16 * 1024 * 1024,
  progress?: (done: number) => void | Promise<void>,
  expect?: string,
): Promise<string> {
  const store = storeFor(uri);
  const h = createHash('sha256');
  for (let off = 0; off < length; off += chunk) {
    h.update(await store.read(uri, offset + off, Math.min(chunk, length - off), expect));
    await progress?.(Math.min(length, off + chunk));
  }
  return h.digest('hex');
}

export { normalizeUri };
