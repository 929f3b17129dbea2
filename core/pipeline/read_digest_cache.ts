/**
 * The BLAKE3s a shard computes of what it reads from its inputs, cached by each input file's identity, so that a
 * merge of inputs that have not changed since an earlier merge on this machine (a nightly merge of mostly the
 * same checkpoints) reads them without hashing them again. The manifest's digests are the same either way.
 *
 * An entry is keyed by everything the digest depends on: the file (URI, size, version: the S3 ETag, or for a
 * local file its size-mtime plus inode and ctime, which no tool can set back), whether the input is the base and
 * whether the base's float tensors are read, and the shard's tensors in order. Any write to a file changes its
 * key, so a stale entry is never found; a damaged entry is a miss. The cache never fails a merge: an entry that
 * cannot be read or written is skipped.
 *
 * Where: MERGEFLOW_DIGEST_CACHE (a folder, or `off`); default <MERGEFLOW_HOME>/cache/digests when MERGEFLOW_HOME
 * is set, else <XDG_CACHE_HOME or ~/.cache>/mergeflow/digests.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Checkpoint, TensorInfo } from '../safetensors';
import { filePath, storeFor } from '../store';
import { inputReads } from './shard_stream';

/** The cache folder, or undefined when MERGEFLOW_DIGEST_CACHE=off. */
export function digestCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.MERGEFLOW_DIGEST_CACHE;
  if (v === 'off') return undefined;
  if (v) return path.resolve(v);
  if (env.MERGEFLOW_HOME) return path.join(path.resolve(env.MERGEFLOW_HOME), 'cache', 'digests');
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mergeflow', 'digests');
}

/** In this process: shards served from the cache (hits) or not (misses), and entries written (one per input). */
export const digestCacheStats = { hits: 0, misses: 0, writes: 0 };

const ENTRY = /^[0-9a-f]{64}$/;

/** What identifies a file's content without reading it. */
async function identity(f: { uri: string; size: number; etag?: string }): Promise<string> {
  if (storeFor(f.uri).scheme !== 'file') return `${f.uri} ${f.size} ${f.etag ?? ''}`;
  const s = await fs.stat(filePath(f.uri), { bigint: true });
  return `${f.uri} ${s.size} ${f.etag ?? ''} ${s.dev}:${s.ino} ${s.mtimeNs} ${s.ctimeNs}`;
}

/** Per input (base first), the key of what this shard reads of it. */
export async function shardReadKeys(
  base: Checkpoint,
  models: readonly Checkpoint[],
  tensors: readonly TensorInfo[],
  readBase: boolean,
): Promise<string[]> {
  return Promise.all(
    [base, ...models].map(async (ck, i) => {
      const read = tensors.filter((t) => inputReads(i, t.dtype, readBase)).map((t) => t.name);
      const files = await Promise.all(ck.files.map(identity));
      const doc = JSON.stringify({ v: 2, role: i === 0 ? 'base' : 'model', readBase, files, read });
      return createHash('sha256').update(doc).digest('hex');
    }),
  );
}

/** The cached per-file digests of every input, or undefined unless all of them are cached. */
export async function cachedReads(dir: string, keys: readonly string[], files: readonly number[]) {
  const out: string[][] = [];
  for (const [i, key] of keys.entries()) {
    const got = await fs.readFile(path.join(dir, key.slice(0, 2), key), 'utf8').catch(() => undefined);
    let digests: unknown;
    try {
      digests = got === undefined ? undefined : JSON.parse(got).digests;
    } catch {
      digests = undefined;
    }
    const ok =
      Array.isArray(digests) &&
      digests.length === files[i] &&
      digests.every((d) => typeof d === 'string' && (d === '' || ENTRY.test(d)));
    if (!ok) {
      digestCacheStats.misses++;
      return undefined;
    }
    out.push(digests as string[]);
  }
  digestCacheStats.hits++;
  return out;
}

/** Record each input's per-file digests (write, then rename: a reader never sees half an entry). */
export async function storeReads(dir: string, keys: readonly string[], digests: readonly string[][]): Promise<void> {
  for (const [i, key] of keys.entries()) {
    const folder = path.join(dir, key.slice(0, 2));
    const tmp = path.join(folder, `.${key}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await fs.mkdir(folder, { recursive: true });
      await fs.writeFile(tmp, JSON.stringify({ digests: digests[i] }) + '\n');
      await fs.rename(tmp, path.join(folder, key));
      digestCacheStats.writes++;
    } catch {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

/**
 * A shard's view of the cache: the digests of every input when all are cached, and `remember` to store the
 * digests the shard computed (a no-op when the cache is off). What mergeShard uses.
 */
export async function shardDigestCache(
  base: Checkpoint,
  models: readonly Checkpoint[],
  tensors: readonly TensorInfo[],
  readBase: boolean,
): Promise<{ cached: string[][] | undefined; remember: (digests: string[][]) => Promise<string[][]> }> {
  const dir = digestCacheDir();
  if (!dir) return { cached: undefined, remember: async (d) => d };
  const keys = await shardReadKeys(base, models, tensors, readBase);
  const cached = await cachedReads(
    dir,
    keys,
    [base, ...models].map((ck) => ck.files.length),
  );
  return {
    cached,
    remember: async (d) => {
      await storeReads(dir, keys, d);
      return d;
    },
  };
}
