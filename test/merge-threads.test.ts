/**
 * The chunk kernel split across worker threads gives the bytes of the one-thread path, for every data-free
 * method, F32 and BF16, with odd element counts; the hashing thread gives the same input digests; and no
 * thread outlives its shard, also when the merge is stopped half-way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Checkpoint, DType, fromFloat32, writeTensors } from '../core/safetensors';
import { runLocalMerge } from '../core/pipeline/local';
import { planMerge } from '../core/pipeline/plan';
import { writeCoefficients } from '../core/pipeline/coefficients';
import { mergeShard } from '../core/pipeline/merge_shard';
import { KernelPool } from '../core/pipeline/kernel_pool';
import { liveThreads } from '../core/pipeline/threads';
import { readJson } from '../core/store';
import { fileUri, tmpDir } from './helpers/env';
import { listedMergeConfig, METHOD_CASES } from './helpers/configs';
import { seededValues, writeSeededInputs } from './helpers/seeded_inputs';

/** Odd element counts, larger than a split, so every thread gets a range and the last one a ragged end. */
const SHAPES: Record<string, number[]> = { emb: [513, 257], ln: [211], w: [401, 331] };
/** 4 inputs × 100 000 elements × 8 bytes: 'emb' and 'w' take two chunks each, the first split across threads. */
const BUDGET = String(4 * 100_000 * 8);

const values = (n: number, seed: number) => seededValues(n, seed);

async function inputs(label: string, dtype: DType): Promise<{ dir: string; uris: string[] }> {
  const dir = tmpDir(label);
  return { dir, uris: await writeSeededInputs(dir, SHAPES, 4, dtype) };
}

const config = listedMergeConfig;

async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
}

type Manifest = { inputs: unknown };

for (const dtype of ['F32', 'BF16'] as const) {
  test(`${dtype}: the kernel on 3 threads writes the bytes of the 1-thread path (TA, WA, TIES)`, async () => {
    const { dir, uris } = await inputs(`threads-${dtype}`, dtype);
    for (const [method, parameters] of METHOD_CASES) {
      const tag = `${dtype} ${method} ${JSON.stringify(parameters)}`;
      const one = await withEnv({ MERGEFLOW_KERNEL_THREADS: '1', MERGEFLOW_STREAM_BUDGET: BUDGET }, () =>
        runLocalMerge(config(dir, uris, method, parameters, `${method}-1.safetensors`)),
      );
      const three = await withEnv({ MERGEFLOW_KERNEL_THREADS: '3', MERGEFLOW_STREAM_BUDGET: BUDGET }, () =>
        runLocalMerge(config(dir, uris, method, parameters, `${method}-3.safetensors`)),
      );
      assert.equal(three.output.sha256, one.output.sha256, tag);
      const [m1, m3] = await Promise.all(
        [one, three].map((r) => readJson(r.manifestUri, (w) => new Error(w)) as Promise<Manifest>),
      );
      assert.deepEqual(m3.inputs, m1.inputs, `${tag}: the input digests`);
    }
  });
}

test('a pool splits a chunk across its threads with the bytes of one thread', async () => {
  const n = 3 * 40_000 + 7;
  const shared = (v: Float32Array) => {
    const s = new Float32Array(new SharedArrayBuffer(v.byteLength));
    s.set(v);
    return s;
  };
  const base = shared(values(n, 1));
  const models = [2, 3, 4, 5, 6].map((seed) => shared(values(n, seed)));
  const run = async (threads: number, coefs: number[]) => {
    // the JavaScript kernel on plain shared arrays (test/wasm-kernel.test.ts splits the WebAssembly one)
    const pool = new KernelPool({ kind: 'linear' }, threads, 1024, 'js');
    try {
      const out = shared(new Float32Array(n));
      await pool.merge('t', { out, acc: shared(new Float32Array(n)), base, models }, coefs);
      return Buffer.from(out.buffer);
    } finally {
      await pool.close();
    }
  };
  for (const coefs of [
    [0.3, 0.3, 0.3, 0.3, 0.3],
    [0.1, -0.2, 0.3, 0.7, 1.1],
  ]) {
    const one = await run(1, coefs);
    assert.ok(one.some((b) => b !== 0));
    assert.ok((await run(4, coefs)).equals(one), `coefficients ${coefs}`);
  }
  assert.equal(liveThreads(), 0);
});

test('no kernel or hashing thread outlives a shard stopped half-way', async () => {
  const { dir, uris } = await inputs('threads-stop', 'F32');
  const plan = await planMerge(config(dir, uris, 'task_arithmetic', {}, 'stop.safetensors'), 'stop');
  const table = await writeCoefficients(plan, {});
  let seenThreads = 0;
  await withEnv({ MERGEFLOW_KERNEL_THREADS: '3', MERGEFLOW_STREAM_BUDGET: BUDGET }, () =>
    assert.rejects(
      mergeShard(plan, 0, {}, table, (done) => {
        seenThreads = Math.max(seenThreads, liveThreads());
        if (done > 0.2) throw new Error('cancelled');
      }),
      /cancelled/,
    ),
  );
  assert.equal(seenThreads, 3, 'two kernel threads and one hashing thread ran');
  assert.equal(liveThreads(), 0, 'all of them exited');
});

test('a NaN in the range of a kernel thread is refused, naming the model and the tensor', async () => {
  const { dir, uris } = await inputs('threads-nan', 'F32');
  const m2 = await Checkpoint.open(uris[2]);
  const w = await m2.readFloat32('w');
  w[90_000] = NaN; // in the third thread's range of w's first chunk (100 000 elements, 3 threads)
  const tensors = await Promise.all(
    Object.keys(SHAPES).map(async (name) => ({
      name,
      dtype: 'F32' as DType,
      shape: SHAPES[name],
      data: fromFloat32(name === 'w' ? w : await m2.readFloat32(name), 'F32'),
    })),
  );
  const bad = fileUri(path.join(dir, 'm2-nan.safetensors'));
  await writeTensors(bad, tensors);
  await withEnv({ MERGEFLOW_KERNEL_THREADS: '3', MERGEFLOW_STREAM_BUDGET: BUDGET }, () =>
    assert.rejects(
      runLocalMerge(config(dir, [uris[0], uris[1], bad, uris[3]], 'task_arithmetic', {}, 'nan.safetensors')),
      (e: Error) => e.message.includes('m2-nan.safetensors') && /'w'/.test(e.message) && /NaN/.test(e.message),
    ),
  );
  assert.equal(liveThreads(), 0);
});

test('a bad MERGEFLOW_KERNEL_THREADS is refused with a message naming it', async () => {
  const { dir, uris } = await inputs('threads-env', 'F32');
  await withEnv({ MERGEFLOW_KERNEL_THREADS: 'many' }, () =>
    assert.rejects(
      runLocalMerge(config(dir, uris, 'weight_average', {}, 'x.safetensors')),
      /MERGEFLOW_KERNEL_THREADS='many' is not a whole number/,
    ),
  );
});
