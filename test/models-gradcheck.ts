/** Finite-difference checks for tf gradients, in float32: small O(1) inputs, central differences. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../core/data/rng';

/** mulberry32 (shared with core/data): a tiny seeded PRNG so that failures reproduce. */
export const rng = mulberry32;

/** Standard normal values (Box-Muller) from a seeded generator. */
export function randn(n: number, next: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(next(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Check d/dx of scalar f at every element of every input against central differences.
 * f may return any tensor; the scalar checked is sum(f(xs) * fixed random weights), so that every output
 * element matters with a different weight.
 */
export function checkGrads(
  label: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: { values: Float32Array; shape: number[] }[],
  opts: { eps?: number; tol?: number; seed?: number } = {},
): void {
  const eps = opts.eps ?? 1e-3;
  const tol = opts.tol ?? 2e-3;
  const next = rng(opts.seed ?? 7);
  let weights: tf.Tensor | undefined;
  const loss = (...xs: tf.Tensor[]): tf.Scalar =>
    tf.tidy(() => {
      const y = f(...xs);
      weights ??= tf.keep(tf.tensor(randn(y.size, next), y.shape));
      return tf.sum(tf.mul(y, weights));
    });
  const xs = inputs.map((i) => tf.tensor(i.values, i.shape));
  try {
    const grads = tf.grads(loss)(xs);
    const analytic = grads.map((g) => g.dataSync());
    tf.dispose(grads);
    inputs.forEach((inp, k) => {
      for (let e = 0; e < inp.values.length; e++) {
        const at = (delta: number) => {
          const v = inp.values.slice();
          v[e] += delta;
          return tf.tidy(() => loss(...xs.map((x, j) => (j === k ? tf.tensor(v, inp.shape) : x))).dataSync()[0]);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        const a = analytic[k][e];
        const err = Math.abs(numeric - a);
        assert.ok(
          err <= tol * Math.max(1, Math.abs(numeric), Math.abs(a)),
          `${label}: d/dx${k}[${e}] analytic ${a} vs numeric ${numeric} (|diff| ${err})`,
        );
      }
    });
  } finally {
    tf.dispose(xs);
    weights?.dispose();
  }
}
