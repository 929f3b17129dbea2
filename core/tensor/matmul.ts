/**
 * Matrix products that stay on each backend's fast path.
 *
 * The wasm backend sends only rank-2, untransposed products to XNNPACK (measured on a 2-core x86 machine,
 * [512,256] x [256,1024]: 17 GFLOP/s untransposed, 0.3 to 1 GFLOP/s with transposeA/transposeB or a batch
 * dimension). So on wasm a transposed operand is transposed explicitly first (a copy, far cheaper than the
 * slow product); other backends get the flags as they are.
 */
import * as tf from '@tensorflow/tfjs-core';

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/**
 * tf.matMul(a, b, transposeA, transposeB), fast on wasm too. For rank 2, of op(a) @ op(b) and
 * (op(b)^T @ op(a)^T)^T the one that copies fewer elements is used: x @ W^T with a large W becomes
 * (W @ x^T)^T, which never transposes W.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (tf.getBackend() !== 'wasm' || (!transposeA && !transposeB)) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => {
    if (a.rank === 2 && b.rank === 2) {
      const [a0, a1] = a.shape as number[];
      const [b0, b1] = b.shape as number[];
      const m = transposeA ? a1 : a0;
      const n = transposeB ? b0 : b1;
      const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0);
      const swapped = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + m * n;
      if (swapped < direct) {
        return tf.transpose(tf.matMul(transposeB ? b : swapLast(b), transposeA ? a : swapLast(a)));
      }
    }
    return tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b);
  });
}
