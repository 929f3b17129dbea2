/** CLIP-style classification heads: logits and accuracy against a plain JS reference, and clear errors. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../core/tensor/backend';
import { fromFloat32, writeTensors } from '../core/safetensors';
import { normalizeUri } from '../core/store';
import { accuracy, disposeHead, headLogits, loadHead, makeHead } from '../core/models/head';
import { checkGrads, randn, rng } from './models-gradcheck';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-head-'));
const next = rng(5);

type T = { name: string; shape: number[]; values: number[] | Float32Array; dtype?: 'F32' | 'F16' };
async function writeHead(file: string, tensors: T[]): Promise<string> {
  const uri = normalizeUri(path.join(dir, file));
  await writeTensors(
    uri,
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype ?? 'F32',
      shape: t.shape,
      data: fromFloat32(Float32Array.from(t.values), t.dtype ?? 'F32'),
    })),
  );
  return uri;
}

/** logits[i][c] = scale * <e_i / |e_i|, w_c> + b_c, in float64. */
function referenceLogits(emb: number[][], w: number[][], logScale: number, bias?: number[]): number[][] {
  return emb.map((e) => {
    const norm = Math.sqrt(e.reduce((s, x) => s + x * x, 0));
    return w.map(
      (wc, c) => Math.exp(logScale) * wc.reduce((s, x, k) => s + (x * e[k]) / norm, 0) + (bias ? bias[c] : 0),
    );
  });
}

function referenceAccuracy(logits: number[][], labels: number[]): number {
  let right = 0;
  logits.forEach((row, i) => {
    let best = 0;
    row.forEach((v, c) => (v > row[best] ? (best = c) : undefined));
    if (best === labels[i]) right++;
  });
  return right / labels.length;
}

const rows = (a: Float32Array, cols: number) =>
  Array.from({ length: a.length / cols }, (_, i) => Array.from(a.subarray(i * cols, (i + 1) * cols)));

describe('classification head', () => {
  before(async () => {
    await initBackend('cpu', () => undefined);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const C = 5;
  const D = 8;
  const W = randn(C * D, next);
  const E = randn(6 * D, next, 3);

  for (const [label, extra, logScale] of [
    ['logit_scale [1] = log 100 (CLIP)', [{ name: 'logit_scale', shape: [1], values: [Math.log(100)] }], Math.log(100)],
    ['scalar logit_scale', [{ name: 'logit_scale', shape: [], values: [1.5] }], 1.5],
    ['no logit_scale: scale 1', [], 0],
  ] as [string, T[], number][]) {
    it(`logits match the JS reference: ${label}`, async () => {
      const head = await loadHead(
        await writeHead(`h-${label.length}.safetensors`, [{ name: 'weight', shape: [C, D], values: W }, ...extra]),
      );
      assert.ok(Math.abs(head.logitScale - logScale) < 1e-6);
      const logits = headLogits(head, tf.tensor2d(E, [6, D]));
      const ref = referenceLogits(rows(E, D), rows(W, D), logScale);
      const got = rows(logits.dataSync() as Float32Array, C);
      got.forEach((r, i) =>
        r.forEach((v, c) =>
          assert.ok(
            Math.abs(v - ref[i][c]) <= 1e-5 * Math.max(1, Math.abs(ref[i][c])),
            `[${i}][${c}] ${v} vs ${ref[i][c]}`,
          ),
        ),
      );
      logits.dispose();
      disposeHead(head);
    });
  }

  it('bias and F16 weights', async () => {
    const bias = Array.from(randn(C, next));
    const head = await loadHead(
      await writeHead('bias.safetensors', [
        { name: 'weight', shape: [C, D], values: W, dtype: 'F16' },
        { name: 'bias', shape: [C], values: bias },
      ]),
    );
    const got = rows(headLogits(head, tf.tensor2d(E, [6, D])).dataSync() as Float32Array, C);
    const ref = referenceLogits(rows(E, D), rows(W, D), 0, bias);
    got.forEach((r, i) =>
      r.forEach((v, c) => assert.ok(Math.abs(v - ref[i][c]) < 1e-2, `[${i}][${c}] ${v} vs ${ref[i][c]}`)),
    );
  });

  it('accuracy matches the JS reference (ties go to the first class)', () => {
    const logits = [
      [0.1, 0.9, 0.3],
      [2, 2, 1], // tie: class 0
      [-1, -3, -0.5],
      [0, 0, 0], // all tied: class 0
      [5, 1, 5.0001],
    ];
    const labels = [1, 1, 2, 0, 2];
    const t = tf.tensor2d(logits);
    assert.equal(accuracy(t, labels), referenceAccuracy(logits, labels));
    assert.equal(accuracy(t, labels), 4 / 5);
    assert.equal(accuracy(t, tf.tensor1d(labels, 'int32')), 4 / 5);
    assert.equal(accuracy(t, Int32Array.from([0, 0, 0, 0, 0])), 2 / 5);
    for (let trial = 0; trial < 5; trial++) {
      const vals = randn(20 * 7, next);
      const lab = Array.from({ length: 20 }, () => Math.floor(next() * 7));
      assert.equal(accuracy(tf.tensor2d(vals, [20, 7]), lab), referenceAccuracy(rows(vals, 7), lab));
    }
  });

  it('gradient of the entropy of softmax(logits) wrt embeddings matches finite differences', () => {
    const head = makeHead(tf.tensor2d(W, [C, D]), { logitScale: Math.log(4) });
    checkGrads(
      'head entropy',
      (e) => {
        const p = tf.softmax(headLogits(head, e as tf.Tensor2D));
        return tf.neg(tf.sum(tf.mul(p, tf.log(p))));
      },
      [{ values: randn(3 * D, next), shape: [3, D] }],
    );
  });

  it('mismatched embedding width is a clear error', async () => {
    const head = await loadHead(await writeHead('w.safetensors', [{ name: 'weight', shape: [C, D], values: W }]));
    assert.throws(
      () => headLogits(head, tf.zeros([2, 7]) as tf.Tensor2D),
      /^ModelError: file:\/\/.*w\.safetensors: head weight is \[5, 8\] \(classes, dim\) but the embeddings are \[2, 7\]; expected \[N, 8\]/,
    );
  });

  it('malformed head files are clear errors', async () => {
    const bad = async (file: string, tensors: T[], re: RegExp) =>
      assert.rejects(loadHead(await writeHead(file, tensors)), re);
    await bad(
      'nw.safetensors',
      [{ name: 'weights', shape: [C, D], values: W }],
      /no tensor 'weight' \[classes, dim\] in this head; it has weights/,
    );
    await bad(
      '1d.safetensors',
      [{ name: 'weight', shape: [C * D], values: W }],
      /'weight' has shape \[40\]; expected \[classes, dim\]/,
    );
    await bad(
      'ls.safetensors',
      [
        { name: 'weight', shape: [C, D], values: W },
        { name: 'logit_scale', shape: [2], values: [1, 2] },
      ],
      /'logit_scale' has shape \[2\]; expected a scalar or \[1\] \(the log of the scale\)/,
    );
    await bad(
      'b.safetensors',
      [
        { name: 'weight', shape: [C, D], values: W },
        { name: 'bias', shape: [C + 1], values: new Float32Array(C + 1) },
      ],
      /'bias' has shape \[6\]; expected \[5\] to match 'weight' \[5, 8\]/,
    );
  });

  it('accuracy input errors', () => {
    const t = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    assert.throws(() => accuracy(t, [0]), /accuracy: 2 rows of logits but 1 labels/);
    assert.throws(() => accuracy(t, [0, 2]), /accuracy: label 2 at row 1 is not a class index in \[0, 2\)/);
    assert.throws(
      () => accuracy(tf.tensor1d([1, 2]) as unknown as tf.Tensor2D, [0, 1]),
      /logits have shape \[2\]; expected \[N, classes\]/,
    );
  });
});
