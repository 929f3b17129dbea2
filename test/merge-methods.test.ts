/** Each data-free method, run through the streamed pipeline, against a plain in-memory reference. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { Checkpoint, DType, fromFloat32, writeTensors } from '../core/safetensors';
import { runLocalMerge } from '../core/pipeline/local';
import { histogramHigh, histogramLow, locateRank, thresholdRank, bitsToFloat } from '../core/merge/topk';
import { fileUri, tmpDir } from './helpers/env';

interface Family {
  dir: string;
  base: Record<string, Float32Array>;
  models: Record<string, Float32Array>[];
  shapes: Record<string, number[]>;
}

/** Deterministic small values, with many exact magnitude ties (multiples of 1/64). */
function values(n: number, seed: number, tiesOnly: boolean): Float32Array {
  let s = seed >>> 0;
  const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: n }, () => (tiesOnly ? Math.round((next() - 0.5) * 16) / 64 : next() - 0.5));
}

async function family(label: string, K: number, tiesOnly = false, dtype: DType = 'F32'): Promise<Family> {
  const dir = tmpDir(label);
  const shapes: Record<string, number[]> = { 'a.weight': [7, 5], 'a.bias': [5], 'b.weight': [3, 11] };
  const base: Record<string, Float32Array> = {};
  for (const [i, [n, s]] of Object.entries(shapes).entries())
    base[n] = values(
      s.reduce((x, y) => x * y, 1),
      100 + i,
      tiesOnly,
    );
  const models: Record<string, Float32Array>[] = [];
  const write = (file: string, t: Record<string, Float32Array>) =>
    writeTensors(
      fileUri(path.join(dir, file)),
      Object.keys(shapes).map((n) => ({ name: n, dtype, shape: shapes[n], data: fromFloat32(t[n], dtype) })),
    );
  await write('base.safetensors', base);
  for (let k = 0; k < K; k++) {
    const m: Record<string, Float32Array> = {};
    for (const [i, n] of Object.keys(shapes).entries()) {
      const tv = values(base[n].length, 1000 * k + i, tiesOnly);
      m[n] = Float32Array.from(base[n], (b, j) => b + tv[j]);
    }
    models.push(m);
    await write(`m${k}.safetensors`, m);
  }
  return { dir, base, models, shapes };
}

async function merge(f: Family, method: string, parameters: Record<string, unknown>, out = 'out.safetensors') {
  const cfg = validateConfig(
    {
      method,
      base: path.join(f.dir, 'base.safetensors'),
      models: f.models.map((_, k) => ({ name: `m${k}`, checkpoint: path.join(f.dir, `m${k}.safetensors`) })),
      parameters,
      output: path.join(f.dir, out),
      shards: 2,
    },
    'test',
  );
  const r = await runLocalMerge(cfg);
  const ck = await Checkpoint.open(r.output.uri);
  const got: Record<string, Float32Array> = {};
  for (const n of Object.keys(f.shapes)) got[n] = await ck.readFloat32(n);
  return { got, r };
}

const f32 = Math.fround;
function close(a: Float32Array, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('weight averaging and Task Arithmetic match the plain formulas', async () => {
  const f = await family('ta', 3);
  const avg = await merge(f, 'weight_average', {});
  const ta = await merge(f, 'task_arithmetic', { scaling: 0.4 }, 'ta.safetensors');
  for (const n of Object.keys(f.shapes)) {
    const b = f.base[n];
    const sum = b.map((_, i) => f.models.reduce((a, m) => a + (m[n][i] - b[i]), 0));
    close(
      avg.got[n],
      b.map((x, i) => x + sum[i] / 3),
      1e-6,
      `avg ${n}`,
    );
    close(
      ta.got[n],
      b.map((x, i) => x + 0.4 * sum[i]),
      1e-6,
      `ta ${n}`,
    );
  }
});

/** Reference TIES on whole flattened task vectors, as the TIES paper's code does it. */
function tiesReference(f: Family, keep: number, scaling: number, mergeFn: 'sum' | 'mean') {
  const names = Object.keys(f.shapes);
  const flat = (t: Record<string, Float32Array>) => Float32Array.from(names.flatMap((n) => Array.from(t[n])));
  const base = flat(f.base);
  const tvs = f.models.map((m) => Float32Array.from(flat(m), (v, i) => v - base[i]));
  const d = base.length;
  const thresholds = tvs.map((tv) => {
    const k = d - Math.floor(d * keep);
    const sorted = Array.from(tv, Math.abs).sort((a, b) => a - b);
    return sorted[k - 1];
  });
  const trimmed = tvs.map((tv, k) => tv.map((v) => (Math.abs(v) >= thresholds[k] ? v : 0)));
  const elected = base.map((_, i) => Math.sign(f32(trimmed.reduce((a, t) => f32(a + t[i]), 0))));
  const majority = Math.sign(Array.from(elected).reduce((a, b) => a + b, 0));
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    const s = elected[i] === 0 ? majority : elected[i];
    let acc = 0;
    let cnt = 0;
    for (const t of trimmed) {
      if (s > 0 ? t[i] > 0 : t[i] < 0) {
        acc = f32(acc + t[i]);
        cnt++;
      }
    }
    out[i] = base[i] + scaling * (mergeFn === 'mean' ? acc / Math.max(cnt, 1) : acc);
  }
  return { out, thresholds, names };
}

for (const [label, tiesOnly, keep, mergeFn] of [
  ['random values', false, 0.2, 'sum'],
  ['many magnitude ties', true, 0.2, 'sum'],
  ['ties, dis-mean, keep 0.5', true, 0.5, 'mean'],
] as const) {
  test(`TIES matches the reference with an exact global top-k (${label})`, async () => {
    const f = await family('ties', 4, tiesOnly);
    const { got, r } = await merge(f, 'ties', { keep, scaling: 0.3, merge: mergeFn });
    const ref = tiesReference(f, keep, 0.3, mergeFn);
    assert.deepEqual(r.global.thresholds, ref.thresholds, 'thresholds are exact');
    const flatGot = Float32Array.from(ref.names.flatMap((n) => Array.from(got[n])));
    close(flatGot, ref.out, 1e-6, 'ties');
  });
}

test('radix top-k equals a full sort for any keep fraction', () => {
  const base = new Float32Array(5000);
  const m = values(5000, 9, true); // heavy ties
  for (const keep of [0.01, 0.2, 0.5, 0.99]) {
    const hi = new Float64Array(65536);
    histogramHigh(hi, m, base);
    const rank = thresholdRank(5000, keep);
    const { bucket, rest } = locateRank(hi, rank);
    const lo = new Float64Array(65536);
    histogramLow(lo, m, base, bucket);
    const t = bitsToFloat(((bucket << 16) | locateRank(lo, rest).bucket) >>> 0);
    const sorted = Array.from(m, Math.abs).sort((a, b) => a - b);
    assert.equal(t, sorted[rank - 1], `keep ${keep}`);
  }
});

test('mixed dtypes are merged in F32 and written in the base dtype unless the config says otherwise', async () => {
  const f = await family('mixed', 2, false, 'BF16');
  const { r } = await merge(f, 'task_arithmetic', {});
  const ck = await Checkpoint.open(r.output.uri);
  assert.equal(ck.info('a.weight').dtype, 'BF16');
  const cfg = validateConfig(
    {
      method: 'task_arithmetic',
      base: path.join(f.dir, 'base.safetensors'),
      models: [{ name: 'x', checkpoint: path.join(f.dir, 'm0.safetensors') }],
      output: path.join(f.dir, 'f32.safetensors'),
      dtype: 'F32',
    },
    'test',
  );
  const r2 = await runLocalMerge(cfg);
  assert.equal((await Checkpoint.open(r2.output.uri)).info('a.weight').dtype, 'F32');
});
