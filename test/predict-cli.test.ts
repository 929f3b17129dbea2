/** `mergeflow predict`: embeddings and logits match a direct forward pass; bad inputs fail with one clear line. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeDataset } from '../core/data/dataset';
import { mulberry32 } from '../core/data/rng';
import { predict } from '../core/eval/predict';
import { ensureBackend } from '../core/eval/evaluate';
import { clipVisionForward, ClipVisionConfig, disposeParams, loadClipVision } from '../core/models/clip_vit';
import { headLogits, loadHead, disposeHead } from '../core/models/head';
import { SafetensorsFile } from '../core/safetensors';
import { writeHead, writeModel } from '../core/suite/io';
import { initParams } from '../core/suite/train';
import { fileUri, runCli, tmpDir } from './helpers/env';

const C: ClipVisionConfig = {
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  imageSize: 28,
  patchSize: 7,
  numChannels: 1,
  projectionDim: 8,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
};
const N = 37; // not a multiple of the batch size
const CLASSES = 5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('predict', () => {
  const dir = tmpDir('predict');
  const model = fileUri(path.join(dir, 'model'));
  const head = fileUri(path.join(dir, 'head.safetensors'));
  const u8 = fileUri(path.join(dir, 'u8.safetensors'));
  const f32 = fileUri(path.join(dir, 'f32.safetensors'));
  const big = fileUri(path.join(dir, 'big.safetensors'));
  const r = mulberry32(11);
  const pixels = Uint8Array.from({ length: N * 28 * 28 }, () => Math.floor(r() * 256));
  const floats = Float32Array.from({ length: N * 28 * 28 }, () => r() * 4 - 2);
  const labels = Int32Array.from({ length: N }, () => Math.floor(r() * CLASSES));

  before(async () => {
    await ensureBackend();
    await writeModel(model, C, initParams(C, 5));
    const w = Float32Array.from({ length: CLASSES * C.projectionDim }, () => r() - 0.5);
    await writeHead(head, { weight: w, classes: CLASSES, dim: C.projectionDim, logitScale: Math.log(10) }, 'test', [
      'a',
      'b',
      'c',
      'd',
      'e',
    ]);
    await writeDataset(u8, {
      inputs: pixels,
      shape: [N, 1, 28, 28],
      labels,
      prep: { mean: [0.5], std: [0.5], classes: CLASSES },
    });
    await writeDataset(f32, { inputs: floats, shape: [N, 1, 28, 28] }); // no JSON: fed as stored
    await writeDataset(big, { inputs: new Uint8Array(3 * 32 * 32), shape: [3, 1, 32, 32] });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Direct forward on the given preprocessed pixels. */
  async function reference(values: Float32Array): Promise<{ emb: Float32Array; logits: Float32Array }> {
    const m = await loadClipVision(model);
    const h = await loadHead(head);
    try {
      return tf.tidy(() => {
        const e = clipVisionForward(m.params, m.config, tf.tensor4d(values, [N, 1, 28, 28]));
        return { emb: e.dataSync() as Float32Array, logits: headLogits(h, e).dataSync() as Float32Array };
      });
    } finally {
      disposeParams(m.params);
      disposeHead(h);
    }
  }

  async function readOut(uri: string): Promise<Record<string, { shape: number[]; values: Float32Array }>> {
    const f = await SafetensorsFile.open(uri);
    const out: Record<string, { shape: number[]; values: Float32Array }> = {};
    for (const t of f.tensors) out[t.name] = { shape: [...t.shape], values: await f.readFloat32(t.name) };
    return out;
  }

  it('U8 inputs with preprocessing JSON: embeddings and logits equal a direct forward on (x/255 - 0.5)/0.5', async () => {
    const out = fileUri(path.join(dir, 'out-u8.safetensors'));
    const res = await predict(model, u8, out, { head, batchSize: 16 });
    assert.equal(res.n, N);
    const got = await readOut(out);
    assert.deepEqual(Object.keys(got).sort(), ['embeddings', 'logits']);
    assert.deepEqual(got.embeddings.shape, [N, C.projectionDim]);
    assert.deepEqual(got.logits.shape, [N, CLASSES]);
    const ref = await reference(Float32Array.from(pixels, (v) => (v / 255 - 0.5) / 0.5));
    assert.ok(maxAbsDiff(got.embeddings.values, ref.emb) < 1e-5);
    assert.ok(maxAbsDiff(got.logits.values, ref.logits) < 1e-4);
  });

  it('F32 inputs without a JSON are fed as stored; without --head only embeddings are written (CLI)', async () => {
    const out = path.join(dir, 'out-f32.safetensors');
    const r1 = await runCli(['predict', model, '--inputs', f32, '--out', out]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /embeddings \[37, 8\]/);
    const got = await readOut(fileUri(out));
    assert.deepEqual(Object.keys(got), ['embeddings']);
    const ref = await reference(floats);
    assert.ok(maxAbsDiff(got.embeddings.values, ref.emb) < 1e-5);

    const out2 = path.join(dir, 'out-f32-head.safetensors');
    const r2 = await runCli(['predict', model, '--inputs', f32, '--out', out2, '--head', head]);
    assert.equal(r2.code, 0, r2.stderr);
    const got2 = await readOut(fileUri(out2));
    assert.ok(maxAbsDiff(got2.logits.values, ref.logits) < 1e-4);
  });

  it('wrong image size: one clear line, exit code 1', async () => {
    await assert.rejects(
      predict(model, big, fileUri(path.join(dir, 'x.safetensors'))),
      /images are 1x32x32 \(CxHxW\) but the model expects 1x28x28/,
    );
    const r = await runCli(['predict', model, '--inputs', big, '--out', path.join(dir, 'x.safetensors')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^mergeflow: .*images are 1x32x32 .* expects 1x28x28/);
  });

  it('a head for other embeddings, or an output that is not .safetensors: clear errors', async () => {
    const other = fileUri(path.join(dir, 'head16.safetensors'));
    await writeHead(other, { weight: new Float32Array(3 * 16), classes: 3, dim: 16, logitScale: 0 }, 't', [
      'a',
      'b',
      'c',
    ]);
    await assert.rejects(
      predict(model, u8, fileUri(path.join(dir, 'y.safetensors')), { head: other }),
      /head is for 16-dim embeddings but .* projects to 8/,
    );
    await assert.rejects(predict(model, u8, fileUri(path.join(dir, 'y.bin'))), /must be a \.safetensors file/);
  });
});
