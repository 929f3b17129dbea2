/**
 * The input digest cache: a merge of unchanged inputs takes the digests from the cache (no hashing) and records
 * the same ones in its manifest; any write to an input, a damaged entry or MERGEFLOW_DIGEST_CACHE=off means the
 * inputs are hashed again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DType, fromFloat32, numel, writeTensors } from '../core/safetensors';
import { runLocalMerge } from '../core/pipeline/local';
import { digestCacheDir, digestCacheStats } from '../core/pipeline/read_digest_cache';
import { filePath, readJson } from '../core/store';
import { fileUri, tmpDir } from './helpers/env';
import { listedMergeConfig } from './helpers/configs';

const SHAPES: Record<string, number[]> = { emb: [120, 33], ln: [33], ids: [9] };

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

async function writeInput(uri: string, seed: number): Promise<void> {
  await writeTensors(
    uri,
    Object.entries(SHAPES).map(([name, shape], i) =>
      name === 'ids'
        ? { name, dtype: 'I64' as DType, shape, data: new Uint8Array(new BigInt64Array(9).fill(3n).buffer) }
        : { name, dtype: 'F32' as DType, shape, data: fromFloat32(values(numel(shape), seed + i), 'F32') },
    ),
  );
}

async function setup(label: string): Promise<{ dir: string; uris: string[]; cache: string }> {
  const dir = tmpDir(label);
  const uris = ['base', 'm1', 'm2'].map((n) => fileUri(path.join(dir, `${n}.safetensors`)));
  for (const [k, u] of uris.entries()) await writeInput(u, 10 * k + 1);
  return { dir, uris, cache: path.join(dir, 'digest-cache') };
}

type Digests = { base: { sha256: string }[]; models: Record<string, { sha256: string }[]> };

/** Merge (Task Arithmetic, 2 shards) with the given cache setting; the manifest's input digests and cache counts. */
async function merge(dir: string, uris: string[], cache: string, out: string) {
  process.env.MERGEFLOW_DIGEST_CACHE = cache;
  const before = { ...digestCacheStats };
  try {
    const cfg = listedMergeConfig(dir, uris, 'task_arithmetic', { scaling: 0.3 }, out);
    const r = await runLocalMerge({ ...cfg, shards: 2 });
    const manifest = (await readJson(r.manifestUri, (why) => new Error(why))) as { inputs: Digests };
    return {
      inputs: manifest.inputs,
      sha256: r.output.sha256,
      hits: digestCacheStats.hits - before.hits,
      misses: digestCacheStats.misses - before.misses,
      writes: digestCacheStats.writes - before.writes,
    };
  } finally {
    delete process.env.MERGEFLOW_DIGEST_CACHE;
  }
}

test('a second merge of unchanged inputs takes their digests from the cache and records the same ones', async () => {
  const { dir, uris, cache } = await setup('digest-cache-hit');
  const off = await merge(dir, uris, 'off', 'off.safetensors');
  const first = await merge(dir, uris, cache, 'first.safetensors');
  const second = await merge(dir, uris, cache, 'second.safetensors');
  assert.equal(off.hits + off.misses + off.writes, 0, 'MERGEFLOW_DIGEST_CACHE=off neither reads nor writes');
  assert.equal(first.hits, 0);
  assert.equal(first.misses, 2, 'one miss per shard');
  assert.equal(first.writes, 6, 'one entry per input and shard');
  assert.equal(second.misses, 0);
  assert.equal(second.hits, 2, 'both shards from the cache');
  assert.equal(second.writes, 0);
  assert.deepEqual(second.inputs, off.inputs);
  assert.deepEqual(first.inputs, off.inputs);
  assert.equal(second.sha256, off.sha256);
});

test('rewriting an input (even with the same bytes), or a damaged entry, hashes again', async () => {
  const { dir, uris, cache } = await setup('digest-cache-miss');
  const first = await merge(dir, uris, cache, 'first.safetensors');
  // new content in m2: its digest changes and equals an uncached merge's
  await writeInput(uris[2], 99);
  const changed = await merge(dir, uris, cache, 'changed.safetensors');
  const reference = await merge(dir, uris, 'off', 'reference.safetensors');
  assert.equal(changed.misses, 2);
  assert.deepEqual(changed.inputs, reference.inputs);
  assert.notDeepEqual(changed.inputs.models.m2, first.inputs.models.m2);
  assert.deepEqual(changed.inputs.models.m1, first.inputs.models.m1);
  // the same bytes written again: a new identity, so a miss, and the same digests
  await writeInput(uris[2], 99);
  const rewritten = await merge(dir, uris, cache, 'rewritten.safetensors');
  assert.equal(rewritten.misses, 2);
  assert.deepEqual(rewritten.inputs, reference.inputs);
  // damage every entry: all are misses, and the digests are still right
  const entries = fs
    .readdirSync(cache, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  assert.ok(entries.length >= 6);
  for (const e of entries) fs.writeFileSync(e, '{"digests": ["not a digest"]}\n');
  const damaged = await merge(dir, uris, cache, 'damaged.safetensors');
  assert.equal(damaged.hits, 0);
  assert.deepEqual(damaged.inputs, reference.inputs);
  assert.ok(fs.existsSync(filePath(fileUri(path.join(dir, 'damaged.safetensors')))));
});

test('the cache folder: MERGEFLOW_DIGEST_CACHE, else under MERGEFLOW_HOME, else the user cache', () => {
  assert.equal(digestCacheDir({ MERGEFLOW_DIGEST_CACHE: 'off' }), undefined);
  assert.equal(digestCacheDir({ MERGEFLOW_DIGEST_CACHE: '/x/c', MERGEFLOW_HOME: '/h' }), '/x/c');
  assert.equal(digestCacheDir({ MERGEFLOW_HOME: '/h' }), path.join('/h', 'cache', 'digests'));
  assert.equal(digestCacheDir({ XDG_CACHE_HOME: '/xdg' }), path.join('/xdg', 'mergeflow', 'digests'));
});
