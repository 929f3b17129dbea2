/**
 * Weight averaging with `base_free: true` (mergekit's `linear`): the mean of the models within float tolerance,
 * the base's float tensors never read (a base full of NaN gives the same bytes and input digest as a clean
 * one, while the usual weight average refuses it), its non-float tensors copied, and the flag checked by the
 * config schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import { Checkpoint, fromFloat32, numel, writeTensors } from '../core/safetensors';
import { readJson } from '../core/store';
import { fileUri, tmpDir } from './helpers/env';
import { listedMergeConfig } from './helpers/configs';

const SHAPES: Record<string, number[]> = { emb: [301, 257], ln: [211], w: [401, 331] };
const K = 5;

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

/** A checkpoint with the float tensors `fill` gives and one int32 tensor. */
async function checkpoint(uri: string, fill: (name: string, n: number) => Float32Array, ids: number): Promise<void> {
  await writeTensors(uri, [
    ...Object.entries(SHAPES).map(([name, shape]) => ({
      name,
      dtype: 'F32' as const,
      shape,
      data: fromFloat32(fill(name, numel(shape)), 'F32'),
    })),
    {
      name: 'position_ids',
      dtype: 'I32' as const,
      shape: [4],
      data: new Uint8Array(new Int32Array(4).fill(ids).buffer),
    },
  ]);
}

type Manifest = { inputs: { base: { sha256: string }[] } };

test('base_free weight averaging: the mean of the models, without reading the base', async () => {
  const dir = tmpDir('wa-base-free');
  const at = (f: string) => fileUri(path.join(dir, f));
  await checkpoint(at('base.safetensors'), (name, n) => values(n, name.length), 7);
  await checkpoint(at('nan-base.safetensors'), (_, n) => new Float32Array(n).fill(NaN), 7);
  const models = Array.from({ length: K }, (_, k) => at(`m${k + 1}.safetensors`));
  for (const [k, uri] of models.entries())
    await checkpoint(uri, (name, n) => values(n, 100 * k + name.length), 100 + k);

  const run = (base: string, parameters: object, out: string) =>
    runLocalMerge(listedMergeConfig(dir, [base, ...models], 'weight_average', parameters, out));
  const free = await run(at('base.safetensors'), { base_free: true }, 'free.safetensors');
  const merged = await Checkpoint.open(free.output.uri);
  const inputs = await Promise.all(models.map((u) => Checkpoint.open(u)));
  let worst = 0;
  for (const name of Object.keys(SHAPES)) {
    const got = await merged.readFloat32(name);
    const ms = await Promise.all(inputs.map((c) => c.readFloat32(name)));
    for (let i = 0; i < got.length; i++) {
      let mean = 0;
      for (const m of ms) mean += m[i];
      mean /= K;
      worst = Math.max(worst, Math.abs(got[i] - mean));
    }
  }
  assert.ok(worst < 1e-7, `max |out − mean| = ${worst}`);
  // non-float tensors still come from the base
  assert.deepEqual([...new Int32Array(Uint8Array.from(await merged.readBytes('position_ids')).buffer)], [7, 7, 7, 7]);

  // the base's float tensors are not read: a base of NaN gives the same output and the same base digest
  const poisoned = await run(at('nan-base.safetensors'), { base_free: true }, 'free-nan.safetensors');
  assert.equal(poisoned.output.sha256, free.output.sha256);
  const [m1, m2] = await Promise.all(
    [free, poisoned].map((r) => readJson(r.manifestUri, (w) => new Error(w)) as Promise<Manifest>),
  );
  assert.equal(m2.inputs.base[0].sha256, m1.inputs.base[0].sha256);
  // while the usual weight average reads it, and refuses the NaN
  await assert.rejects(run(at('nan-base.safetensors'), {}, 'based-nan.safetensors'), /NaN|not finite/i);

  // the usual weight average, θ0 + mean τ, is the same maths: within float tolerance, a different output object
  const based = await run(at('base.safetensors'), {}, 'based.safetensors');
  const b = await Checkpoint.open(based.output.uri);
  for (const name of Object.keys(SHAPES)) {
    const [x, y] = await Promise.all([merged.readFloat32(name), b.readFloat32(name)]);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) < 1e-6, `${name}[${i}]`);
  }
});

test('base_free is a boolean parameter of weight_average only', () => {
  const cfg = (method: string, parameters: object) => ({
    method,
    base: '/m/base.safetensors',
    models: [{ name: 'a', checkpoint: '/m/a.safetensors' }],
    parameters,
    output: '/m/out.safetensors',
  });
  assert.doesNotThrow(() => validateConfig(cfg('weight_average', { base_free: true }), 'test'));
  assert.throws(() => validateConfig(cfg('weight_average', { base_free: 'yes' }), 'test'), /base_free/);
  assert.throws(() => validateConfig(cfg('task_arithmetic', { base_free: true }), 'test'), /scaling|base_free|key/);
});
