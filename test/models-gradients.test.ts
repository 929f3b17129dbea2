/** Every gradient registered by core/tensor/gradients against central finite differences, on each installed backend. */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, installedBackends } from '../core/tensor/backend';
import { GRADIENT_KERNELS } from '../core/tensor/gradients';
import { matMul } from '../core/tensor/matmul';
import { checkGrads, randn, rng } from './models-gradcheck';

const next = rng(42);
/** n values, standard normal. */
const N = (...shape: number[]) => ({
  values: randn(
    shape.reduce((a, b) => a * b, 1),
    next,
  ),
  shape,
});
/** Values in [lo, hi) spread so no two are within 0.05 (no ties for max/min, no kinks for abs/relu). */
const spread = (lo: number, hi: number, ...shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => lo + ((i + 0.5) * (hi - lo)) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [vals[i], vals[j]] = [vals[j], vals[i]];
  }
  return { values: Float32Array.from(vals), shape };
};

const CASES: [string, (...xs: tf.Tensor[]) => tf.Tensor, ReturnType<typeof N>[]][] = [
  ['add broadcast', (a, b) => tf.add(a, b), [N(2, 3), N(3)]],
  ['sub broadcast', (a, b) => tf.sub(a, b), [N(2, 3), N(2, 1)]],
  ['mul broadcast', (a, b) => tf.mul(a, b), [N(2, 3), N(1, 3)]],
  ['div', (a, b) => tf.div(a, b), [N(2, 3), spread(0.5, 2, 3)]],
  ['maximum', (a, b) => tf.maximum(a, b), [spread(-1, 1, 2, 3), spread(-0.97, 1.03, 2, 3)]],
  ['minimum', (a, b) => tf.minimum(a, b), [spread(-1, 1, 2, 3), spread(-0.97, 1.03, 2, 3)]],
  ['squaredDifference', (a, b) => tf.squaredDifference(a, b), [N(2, 3), N(3)]],
  ['pow tensor', (a, b) => tf.pow(a, b), [spread(0.5, 2, 4), N(4)]],
  ['pow scalar', (a) => tf.pow(a, 3), [N(5)]],
  ['neg', (x) => tf.neg(x), [N(4)]],
  ['exp', (x) => tf.exp(x), [N(4)]],
  ['log', (x) => tf.log(x), [spread(0.5, 3, 4)]],
  ['log1p', (x) => tf.log1p(x), [spread(0, 2, 4)]],
  ['sqrt', (x) => tf.sqrt(x), [spread(0.5, 3, 4)]],
  ['rsqrt', (x) => tf.rsqrt(x), [spread(0.5, 3, 4)]],
  ['square', (x) => tf.square(x), [N(4)]],
  ['reciprocal', (x) => tf.reciprocal(x), [spread(0.5, 3, 4)]],
  ['abs', (x) => tf.abs(x), [spread(-1, 1, 6)]],
  ['sigmoid', (x) => tf.sigmoid(x), [N(4)]],
  ['tanh', (x) => tf.tanh(x), [N(4)]],
  ['erf', (x) => tf.erf(x), [N(4)]],
  ['relu', (x) => tf.relu(x), [spread(-1, 1, 6)]],
  ['clipByValue', (x) => tf.clipByValue(x, -0.4, 0.6), [spread(-1, 1, 6)]],
  ['where', (a, b) => tf.where(tf.tensor([true, false, true]), a, b), [N(3), N(3)]],
  ['addN', (a, b, c) => tf.addN([a, b, c]), [N(2, 2), N(2, 2), N(2, 2)]],
  ['sum axis', (x) => tf.sum(x, 1), [N(2, 3, 2)]],
  ['sum all', (x) => tf.sum(x), [N(2, 3)]],
  ['mean axes keepDims', (x) => tf.mean(x, [0, 2], true), [N(2, 3, 2)]],
  ['max', (x) => tf.max(x, 1), [spread(-1, 1, 2, 4)]],
  ['min', (x) => tf.min(x, -1), [spread(-1, 1, 2, 4)]],
  ['reshape', (x) => tf.reshape(x, [3, 2]), [N(2, 3)]],
  ['expandDims', (x) => tf.expandDims(x, 1), [N(2, 3)]],
  ['transpose rank 4', (x) => tf.transpose(x, [0, 2, 3, 1]), [N(2, 3, 2, 2)]],
  ['slice', (x) => tf.slice(x, [0, 1, 1], [2, 2, -1]), [N(2, 3, 3)]],
  ['concat', (a, b, c) => tf.concat([a, b, c], 1), [N(2, 1), N(2, 3), N(2, 2)]],
  ['stack', (a, b) => tf.stack([a, b], 1), [N(2, 3), N(2, 3)]],
  ['unstack', (x) => tf.unstack(x, 1).reduce((s, t, i) => tf.add(s, tf.mul(t, i + 1))), [N(2, 3)]],
  ['broadcastTo (tile)', (x) => tf.broadcastTo(x, [2, 3, 4]), [N(3, 1)]],
  ['tile', (x) => tf.tile(x, [2, 1, 3]), [N(2, 2, 1)]],
  ['matMul', (a, b) => tf.matMul(a, b), [N(2, 3), N(3, 4)]],
  ['matMul tA', (a, b) => tf.matMul(a, b, true, false), [N(3, 2), N(3, 4)]],
  ['matMul tB', (a, b) => tf.matMul(a, b, false, true), [N(2, 3), N(4, 3)]],
  ['matMul tA tB', (a, b) => tf.matMul(a, b, true, true), [N(3, 2), N(4, 3)]],
  ['matMul tB, wide b (swapped on wasm)', (a, b) => matMul(a, b, false, true), [N(1, 3), N(8, 3)]],
  ['matMul tA tB (swapped on wasm)', (a, b) => matMul(a, b, true, true), [N(3, 2), N(4, 3)]],
  ['matMul batched rank 4', (a, b) => tf.matMul(a, b, false, true), [N(2, 2, 3, 2), N(2, 2, 3, 2)]],
  ['matMul broadcast batch', (a, b) => tf.matMul(a, b), [N(2, 2, 3), N(3, 2)]],
  ['softmax', (x) => tf.softmax(x), [N(2, 4)]],
  ['logSoftmax', (x) => tf.logSoftmax(x), [N(2, 4)]],
  [
    'moments',
    (x) => {
      const m = tf.moments(x, -1, true);
      return tf.add(m.mean, tf.mul(m.variance, 2));
    },
    [N(2, 5)],
  ],
  ['cast', (x) => tf.cast(x, 'float32'), [N(3)]],
];

for (const backend of installedBackends()) {
  describe(`gradients on ${backend}`, () => {
    before(async () => {
      assert.equal(await initBackend(backend, () => undefined), backend);
    });
    for (const [label, f, inputs] of CASES) {
      it(label, () => checkGrads(label, f, inputs));
    }
  });
}

describe('gradient registry', () => {
  it('covers the kernels the CLIP ViT and heads use', () => {
    for (const k of [
      'BatchMatMul',
      'Softmax',
      'Erf',
      'Sigmoid',
      'Mean',
      'SquaredDifference',
      'Rsqrt',
      'Slice',
      'Concat',
      'Tile',
      'Transpose',
      'Reshape',
    ]) {
      assert.ok(GRADIENT_KERNELS.includes(k), k);
      assert.ok(tf.getGradient(k), `${k} has no registered gradient`);
    }
  });

  it('does not leak tensors', () => {
    const before = tf.memory().numTensors;
    const x = tf.tensor([1, 2, 3]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.softmax(tf.mul(t, t))))(x);
    tf.dispose([x, g]);
    assert.equal(tf.memory().numTensors, before);
  });
});
