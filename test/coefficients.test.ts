/** The one linear kernel θ0 + Σk c_k τk and its K × L coefficient table in the store. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { Checkpoint, fromFloat32, isFloatDType, numel } from '../core/safetensors';
import { runLocalMerge } from '../core/pipeline/local';
import { planMerge, coefficientsUri } from '../core/pipeline/plan';
import { mergeShard } from '../core/pipeline/merge_shard';
import { readCoefficientTable, writeCoefficientTable, writeCoefficients } from '../core/pipeline/coefficients';
import { linearMergeTensor } from '../core/merge/coefficients';
import { storeFor } from '../core/store';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { tmpDir } from './helpers/env';

/**
 * Task Arithmetic written plainly, in float32 arithmetic as PyTorch computes it (every operation rounded to
 * float32): Δ = Σk (m_k − θ0), θ = θ0 + λ·Δ, with λ a float32.
 */
function taskArithmeticF32(base: Float32Array, models: readonly Float32Array[], scaling: number): Float32Array {
  const f = Math.fround;
  const delta = new Float32Array(base.length);
  for (const m of models) for (let i = 0; i < delta.length; i++) delta[i] = f(delta[i] + f(m[i] - base[i]));
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = f(base[i] + f(f(scaling) * delta[i]));
  return out;
}

async function family(label: string) {
  const dir = tmpDir(label);
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 21, models: 5, dim: 40, layers: 3 });
  const cfg = (output: string, parameters: Record<string, unknown> = {}) =>
    validateConfig(
      { method: 'task_arithmetic', base: ck.base, models: ck.models, parameters, output, dtype: 'F32', shards: 3 },
      'test',
    );
  const base = await Checkpoint.open(ck.base);
  const models = await Promise.all(ck.models.map((m) => Checkpoint.open(m.checkpoint)));
  const floats = base.tensors.filter((t) => isFloatDType(t.dtype));
  return { dir, cfg, base, models, floats };
}

test("the kernel with Task Arithmetic's coefficients, and the merge, equal plain float32 Task Arithmetic byte for byte", async () => {
  const f = await family('coef-ta');
  for (const scaling of [0.3, 0.37, 1 / 3]) {
    const r = await runLocalMerge(f.cfg(path.join(f.dir, `ta-${scaling}.safetensors`), { scaling }));
    const out = await Checkpoint.open(r.output.uri);
    for (const t of f.floats) {
      const b = await f.base.readFloat32(t.name);
      const ms = await Promise.all(f.models.map((m) => m.readFloat32(t.name)));
      const before = Buffer.from(fromFloat32(taskArithmeticF32(b, ms, scaling), 'F32'));
      const kernel = Buffer.from(
        fromFloat32(
          linearMergeTensor(
            b,
            ms,
            ms.map(() => scaling),
          ),
          'F32',
        ),
      );
      assert.ok(kernel.equals(before), `kernel, ${t.name}, λ=${scaling}`);
      assert.ok(Buffer.from(await out.readBytes(t.name)).equals(before), `merged output, ${t.name}, λ=${scaling}`);
    }
  }
});

test('a layer-wise table (one coefficient per model per tensor) goes through the store and merges each tensor with its column', async () => {
  const f = await family('coef-layer');
  const plan = await planMerge(f.cfg(path.join(f.dir, 'layer.safetensors')), 'layerwise');
  // the method's own table: K × L of λ, the tensor names in base order
  const taUri = await writeCoefficients(plan, {});
  const ta = await readCoefficientTable(taUri);
  assert.deepEqual(
    ta.tensors,
    f.floats.map((t) => t.name),
  );
  assert.deepEqual(
    ta.models,
    plan.models.map((m) => m.name),
  );
  assert.ok(ta.values.every((c) => c === 0.3));

  const K = plan.models.length;
  const L = ta.tensors.length;
  const values = Float64Array.from({ length: K * L }, (_, i) => 0.05 + ((i * 37) % 11) / 20);
  const uri = await writeCoefficientTable(coefficientsUri(plan), { models: ta.models, tensors: ta.tensors, values });
  const parts = [];
  for (const s of plan.shards) parts.push(await mergeShard(plan, s.index, {}, uri));
  // the parts hold the output's tensor bytes in base order; compare each float tensor with a float64 reference
  const bytes = Buffer.concat(
    await Promise.all(parts.map(async (p) => Buffer.from(await storeFor(p.uri).read(p.uri, p.offset ?? 0, p.bytes)))),
  );
  let off = 0;
  for (const t of f.base.tensors) {
    // the output is F32 (dtype: F32); non-float tensors keep their bytes
    const size = isFloatDType(t.dtype) ? 4 * numel(t.shape) : t.end - t.begin;
    const got = bytes.subarray(off, off + size);
    off += size;
    if (!isFloatDType(t.dtype)) {
      assert.ok(got.equals(Buffer.from(await f.base.readBytes(t.name))), `${t.name} copied`);
      continue;
    }
    const l = ta.tensors.indexOf(t.name);
    const b = await f.base.readFloat32(t.name);
    const ms = await Promise.all(f.models.map((m) => m.readFloat32(t.name)));
    const merged = new Float32Array(got.buffer.slice(got.byteOffset, got.byteOffset + size));
    for (let i = 0; i < b.length; i++) {
      let want = b[i];
      for (let k = 0; k < K; k++) want += values[k * L + l] * (ms[k][i] - b[i]);
      assert.ok(
        Math.abs(merged[i] - want) <= 1e-6 * Math.max(1, Math.abs(want)),
        `${t.name}[${i}]: ${merged[i]} vs ${want}`,
      );
    }
  }
  assert.equal(off, bytes.length);

  // a table for other models is refused, naming the table
  await writeCoefficientTable(uri, { models: ta.models.map((m) => `${m}x`), tensors: ta.tensors, values });
  await assert.rejects(mergeShard(plan, 0, {}, uri), /coefficients\.safetensors: the table's models/);
});
