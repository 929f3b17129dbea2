/**
 * AdaMerging's objective on one batch: the Shannon entropy (natural log) of softmax(logits), averaged over
 * the batch rows, as the reference's softmax_entropy(x) = −(softmax(x) · log_softmax(x)).sum(1), then .mean(0).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../tensor/gradients';

/** Mean over rows of −Σc p_c log p_c, p = softmax(logits [N, classes]). Differentiable in the logits. */
export function meanEntropy(logits: tf.Tensor2D): tf.Scalar {
  if (logits.rank !== 2 || logits.shape[0] === 0) {
    throw new Error(`meanEntropy: logits have shape [${logits.shape.join(', ')}]; expected [N >= 1, classes]`);
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const perRow = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
    return tf.mean(perRow) as tf.Scalar;
  });
}
