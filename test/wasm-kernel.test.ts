/**
 * The WebAssembly SIMD linear kernel: its committed bytes are what linear.wat compiles to; it writes the
 * JavaScript kernel's bytes for weight averaging, Task Arithmetic and per-model coefficients, K = 1…24, odd
 * lengths, inputs decoded from F32, BF16 and F16, in place and copied in, on one thread and split across
 * threads; its folded check finds NaN and ±Inf anywhere; whole merges write the same bytes with either
 * kernel; and a bad MERGEFLOW_KERNEL is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { compileKernel } from '../infra/wasm_kernel';
import { LINEAR_WASM } from '../core/kernel/linear_wasm_bytes';
import { KernelArena } from '../core/kernel/arena';
import { ArenaLinear, linearWasmModule } from '../core/kernel/linear_wasm';
import { linearKernel } from '../core/kernel/choice';
import { linearMergeInto } from '../core/merge/coefficients';
import { KernelPool } from '../core/pipeline/kernel_pool';
import { runLocalMerge } from '../core/pipeline/local';
import { liveThreads } from '../core/pipeline/threads';
import { DType, fromFloat32, toFloat32, writeTensors } from '../core/safetensors';
import { fileUri, tmpDir } from './helpers/env';
import { listedMergeConfig } from './helpers/configs';
import { seededValues, writeSeededInputs } from './helpers/seeded_inputs';

const values = seededValues;

/** Values as a checkpoint of this dtype holds them (rounded to it, then decoded to float32). */
function asDType(v: Float32Array, dtype: DType): Float32Array {
  return toFloat32(fromFloat32(v, dtype), dtype);
}

const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** The JavaScript kernel's output; base undefined: a base of zeros (what the stream hands a base-free merge). */
function jsMerge(base: Float32Array | undefined, models: Float32Array[], coefs: number[], n: number): Float32Array {
  const out = new Float32Array(n);
  linearMergeInto(out, new Float32Array(n), base ?? new Float32Array(n), models, coefs);
  return out;
}

async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T> | T): Promise<T> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('the committed module is what linear.wat compiles to, and it loads here', async () => {
  const compiled = await compileKernel();
  assert.ok(Buffer.from(LINEAR_WASM, 'base64').equals(Buffer.from(compiled)), 'run npm run wasm');
  assert.ok(linearWasmModule(), 'WebAssembly SIMD and shared memory are available in this Node');
});

test('the same bytes as the JavaScript kernel: WA, TA, weighted, K = 1…24, odd lengths, F32/BF16/F16', () => {
  const arena = new KernelArena();
  const kernel = new ArenaLinear(arena);
  let cases = 0;
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    for (let K = 1; K <= 24; K++) {
      const n = [1, 7, 8, 9, 17, 1031][K % 6];
      const base = asDType(values(n, K, 2), dtype);
      // fine-tuned models: the base plus small task vectors of mixed scales
      const models = Array.from({ length: K }, (_, k) => {
        const tau = values(n, 100 * K + k, k % 3 === 0 ? 1e-3 : 0.05);
        return asDType(
          base.map((b, i) => b + tau[i]),
          dtype,
        );
      });
      const coefSets = [
        new Array<number>(K).fill(1 / K),
        new Array<number>(K).fill(0.3),
        Array.from({ length: K }, (_, k) => 0.37 * (k + 1) - 0.5 * (k % 2)),
      ];
      for (const coefs of coefSets) {
        for (const baseFree of [false, true]) {
          const want = bytes(jsMerge(baseFree ? undefined : base, models, coefs, n));
          const tag = `${dtype} K=${K} n=${n} coefs=${coefs[0]},… baseFree=${baseFree}`;
          // in place: every array in the arena
          const inArena = (v: Float32Array) => {
            const a = arena.f32(v.length);
            a.set(v);
            return a;
          };
          const out = arena.f32(n);
          assert.ok(kernel.merge(out, baseFree ? undefined : inArena(base), models.map(inArena), coefs), tag);
          assert.ok(bytes(out).equals(want), `${tag}: in place`);
          // copied in: plain arrays
          const plain = new Float32Array(n);
          assert.ok(kernel.merge(plain, baseFree ? undefined : base, models, coefs), tag);
          assert.ok(bytes(plain).equals(want), `${tag}: copied in`);
          cases++;
        }
      }
    }
  }
  assert.equal(cases, 3 * 24 * 3 * 2);
});

test('the folded check finds NaN and ±Inf in the base or any model, in the SIMD body and in the tail', () => {
  const arena = new KernelArena();
  const kernel = new ArenaLinear(arena);
  const n = 203; // 25 blocks of 8, then a tail of 3
  const K = 5;
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const where of [-1, 0, 4]) {
      for (const at of [0, 97, 201]) {
        const base = values(n, 1);
        const models = Array.from({ length: K }, (_, k) => values(n, k + 2));
        (where < 0 ? base : models[where])[at] = bad;
        const finite = kernel.merge(new Float32Array(n), base, models, new Array<number>(K).fill(0.3));
        assert.equal(finite, false, `${bad} in ${where < 0 ? 'the base' : `model ${where}`} at ${at}`);
      }
    }
  }
  // a finite model in a base-free merge whose values are fine; NaN there is found too
  const models = [values(n, 7), values(n, 8)];
  assert.equal(kernel.merge(new Float32Array(n), undefined, models, [0.5, 0.5]), true);
  models[1][200] = NaN;
  assert.equal(kernel.merge(new Float32Array(n), undefined, models, [0.5, 0.5]), false);
  // finite inputs whose float32 sum overflows are finite inputs (the JavaScript kernel also writes Inf there)
  const huge = [new Float32Array(n).fill(3e38), new Float32Array(n).fill(3e38)];
  const out = new Float32Array(n);
  assert.equal(kernel.merge(out, new Float32Array(n), huge, [1, 1]), true);
  assert.ok(bytes(out).equals(bytes(jsMerge(new Float32Array(n), huge, [1, 1], n))));
  assert.equal(out[0], Infinity);
});

test('split across kernel threads over the arena: the bytes of one thread and of the JavaScript kernel', async () => {
  const n = 3 * 40_000 + 13;
  const K = 6;
  for (const baseFree of [false, true]) {
    for (const coefs of [new Array<number>(K).fill(1 / K), [0.1, -0.2, 0.3, 0.7, 1.1, 0.05]]) {
      const outs: Buffer[] = [];
      for (const [threads, engine] of [
        [1, 'js'],
        [1, 'wasm'],
        [4, 'wasm'],
      ] as const) {
        const pool = new KernelPool({ kind: 'linear', baseFree }, threads, 1024, engine);
        try {
          assert.equal(pool.engine, engine);
          const arr = (v: Float32Array) => {
            const a = pool.arena ? pool.arena.f32(v.length) : new Float32Array(new SharedArrayBuffer(v.byteLength));
            a.set(v);
            return a;
          };
          const base = arr(baseFree ? new Float32Array(n) : values(n, 1));
          const models = Array.from({ length: K }, (_, k) => arr(values(n, k + 2)));
          const out = arr(new Float32Array(n));
          assert.ok(await pool.merge('t', { out, acc: arr(new Float32Array(n)), base, models }, coefs));
          outs.push(Buffer.from(bytes(out)));
          // a NaN in the last thread's range is found there
          models[3][n - 5] = NaN;
          assert.equal(await pool.merge('t', { out, acc: arr(new Float32Array(n)), base, models }, coefs), false);
        } finally {
          await pool.close();
        }
      }
      assert.ok(outs[0].some((b) => b !== 0));
      assert.ok(outs[1].equals(outs[0]), `wasm, 1 thread, baseFree=${baseFree}, coefs ${coefs}`);
      assert.ok(outs[2].equals(outs[0]), `wasm, 4 threads, baseFree=${baseFree}, coefs ${coefs}`);
    }
  }
  assert.equal(liveThreads(), 0);
});

test('whole merges write the same bytes with MERGEFLOW_KERNEL=wasm and js (F32, BF16, F16; 1 and 3 threads)', async () => {
  const shapes: Record<string, number[]> = { emb: [301, 257], ln: [211], w: [401, 331] };
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    const dir = tmpDir(`wasm-merge-${dtype}`);
    const uris = await writeSeededInputs(dir, shapes, 5, dtype);
    for (const [method, parameters] of [
      ['task_arithmetic', { scaling: 0.3 }],
      ['weight_average', {}],
      ['weight_average', { base_free: true }],
    ] as const) {
      const sha = async (kernel: string, threads: string) =>
        (
          await withEnv(
            {
              MERGEFLOW_KERNEL: kernel,
              MERGEFLOW_KERNEL_THREADS: threads,
              MERGEFLOW_STREAM_BUDGET: String(5 * 80_000 * 8),
            },
            () =>
              runLocalMerge(
                listedMergeConfig(dir, uris, method, parameters, `${method}-${kernel}-${threads}.safetensors`),
              ),
          )
        ).output.sha256;
      const js = await sha('js', '1');
      const tag = `${dtype} ${method} ${JSON.stringify(parameters)}`;
      assert.equal(await sha('wasm', '1'), js, tag);
      assert.equal(await sha('wasm', '3'), js, `${tag}, 3 threads`);
    }
  }
  assert.equal(liveThreads(), 0);
});

test('a bad MERGEFLOW_KERNEL is refused with a one-line error, before a merge opens anything', async () => {
  await withEnv({ MERGEFLOW_KERNEL: 'simd' }, () => {
    assert.throws(
      () => linearKernel(),
      /^Error: MERGEFLOW_KERNEL='simd' is not a kernel; set it to wasm or js, or unset it$/,
    );
  });
  assert.equal(await withEnv({ MERGEFLOW_KERNEL: 'js' }, () => linearKernel()), 'js');
  assert.equal(await withEnv({ MERGEFLOW_KERNEL: '' }, () => linearKernel()), 'wasm');
  const dir = tmpDir('wasm-bad-env');
  const uris = [0, 1].map((k) => fileUri(path.join(dir, `c${k}.safetensors`)));
  for (const [k, uri] of uris.entries())
    await writeTensors(uri, [{ name: 'w', dtype: 'F32', shape: [4], data: fromFloat32(values(4, k), 'F32') }]);
  const out = 'bad.safetensors';
  await withEnv({ MERGEFLOW_KERNEL: 'fast' }, () =>
    assert.rejects(runLocalMerge(listedMergeConfig(dir, uris, 'task_arithmetic', {}, out)), (e: Error) => {
      assert.match(e.message, /^MERGEFLOW_KERNEL='fast' is not a kernel/);
      assert.ok(!e.message.includes('\n'));
      return true;
    }),
  );
});
