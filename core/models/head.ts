/**
 * CLIP-style classification head, stored as safetensors:
 *   weight       [classes, dim]   required (typically the class prompts' text embeddings)
 *   bias         [classes]        optional (zero when absent)
 *   logit_scale  scalar or [1]    optional; the LOG of the scale, as CLIP stores it (scale = exp(logit_scale);
 *                                 CLIP's trained 4.6052 gives 100). Absent means log-scale 0, i.e. scale 1:
 *                                 the scale is already folded into `weight`, as the AdaMerging heads do.
 * logits = exp(logit_scale) * normalize(embedding) @ weight^T + bias
 * The embedding is L2-normalized here; the weight is used as stored (normalize it when building the head).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; this registers the ones tf.grads needs here.
import '../tensor/gradients';
import { Checkpoint } from '../safetensors';
import { normalizeUri } from '../store';
import { ModelError, shapeStr } from './errors';

export interface ClassificationHead {
  /** Where it came from, for error messages. */
  source: string;
  weight: tf.Tensor2D;
  bias?: tf.Tensor1D;
  /** The log of the scale (CLIP convention). */
  logitScale: number;
}

export const HEAD_TENSORS = ['weight', 'bias', 'logit_scale'] as const;

export function headClasses(head: ClassificationHead): number {
  return head.weight.shape[0];
}

export function headDim(head: ClassificationHead): number {
  return head.weight.shape[1];
}

/** Build a head from values in memory (checks shapes like loadHead). */
export function makeHead(
  weight: tf.Tensor2D,
  opts: { bias?: tf.Tensor1D; logitScale?: number; source?: string } = {},
): ClassificationHead {
  const source = opts.source ?? 'head';
  if (weight.rank !== 2)
    throw new ModelError(`${source}: 'weight' has shape ${shapeStr(weight.shape)}; expected [classes, dim]`);
  if (opts.bias && (opts.bias.rank !== 1 || opts.bias.shape[0] !== weight.shape[0])) {
    throw new ModelError(
      `${source}: 'bias' has shape ${shapeStr(opts.bias.shape)}; expected [${weight.shape[0]}] to match 'weight' ${shapeStr(weight.shape)}`,
    );
  }
  const logitScale = opts.logitScale ?? 0;
  if (!Number.isFinite(logitScale))
    throw new ModelError(`${source}: 'logit_scale' is ${logitScale}; expected a finite number`);
  return { source, weight, bias: opts.bias, logitScale };
}

export async function loadHead(uriOrPath: string): Promise<ClassificationHead> {
  const uri = normalizeUri(uriOrPath);
  const ck = await Checkpoint.open(uri);
  if (!ck.has('weight')) {
    const names = ck.tensors.map((t) => t.name).slice(0, 8);
    throw new ModelError(
      `${uri}: no tensor 'weight' [classes, dim] in this head; it has ${names.length ? names.join(', ') : 'no tensors'}`,
    );
  }
  const wInfo = ck.info('weight');
  if (wInfo.shape.length !== 2)
    throw new ModelError(`${uri}: 'weight' has shape ${shapeStr(wInfo.shape)}; expected [classes, dim]`);
  const weight = tf.tensor2d(await ck.readFloat32('weight'), wInfo.shape as [number, number]);
  let bias: tf.Tensor1D | undefined;
  let logitScale: number | undefined;
  try {
    if (ck.has('bias')) {
      const b = ck.info('bias');
      if (b.shape.length !== 1 || b.shape[0] !== wInfo.shape[0]) {
        throw new ModelError(
          `${uri}: 'bias' has shape ${shapeStr(b.shape)}; expected [${wInfo.shape[0]}] to match 'weight' ${shapeStr(wInfo.shape)}`,
        );
      }
      bias = tf.tensor1d(await ck.readFloat32('bias'));
    }
    if (ck.has('logit_scale')) {
      const s = ck.info('logit_scale');
      if (s.shape.reduce((a, b) => a * b, 1) !== 1 || s.shape.length > 1) {
        throw new ModelError(
          `${uri}: 'logit_scale' has shape ${shapeStr(s.shape)}; expected a scalar or [1] (the log of the scale)`,
        );
      }
      logitScale = (await ck.readFloat32('logit_scale'))[0];
    }
    return makeHead(weight, { bias, logitScale, source: uri });
  } catch (e) {
    weight.dispose();
    bias?.dispose();
    throw e;
  }
}

/** Logits [N, classes] for embeddings [N, dim]. Differentiable in `embeddings` (and in the head's tensors). */
export function headLogits(head: ClassificationHead, embeddings: tf.Tensor2D): tf.Tensor2D {
  if (embeddings.rank !== 2 || embeddings.shape[1] !== headDim(head)) {
    throw new ModelError(
      `${head.source}: head weight is ${shapeStr(head.weight.shape)} (classes, dim) but the embeddings are ` +
        `${shapeStr(embeddings.shape)}; expected [N, ${headDim(head)}]`,
    );
  }
  return tf.tidy(() => {
    // x / max(||x||, 1e-12), as torch.nn.functional.normalize; written so the gradient stays finite.
    const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(embeddings), 1, true)), 1e-12);
    const unit = tf.div(embeddings, norm);
    let logits: tf.Tensor = tf.matMul(unit, head.weight, false, true);
    if (head.logitScale !== 0) logits = tf.mul(logits, Math.exp(head.logitScale));
    if (head.bias) logits = tf.add(logits, head.bias);
    return logits as tf.Tensor2D;
  });
}

/** Fraction of rows whose largest logit (first one on ties) is the label. */
export function accuracy(logits: tf.Tensor2D, labels: ArrayLike<number> | tf.Tensor1D): number {
  if (logits.rank !== 2)
    throw new ModelError(`accuracy: logits have shape ${shapeStr(logits.shape)}; expected [N, classes]`);
  const [n, classes] = logits.shape;
  const lab = labels instanceof tf.Tensor ? labels.dataSync() : labels;
  if (lab.length !== n) throw new ModelError(`accuracy: ${n} rows of logits but ${lab.length} labels`);
  if (n === 0) return 0;
  const predTensor = tf.argMax(logits, 1);
  const pred = predTensor.dataSync();
  predTensor.dispose();
  let right = 0;
  for (let i = 0; i < n; i++) {
    const y = lab[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new ModelError(`accuracy: label ${y} at row ${i} is not a class index in [0, ${classes})`);
    }
    if (pred[i] === y) right++;
  }
  return right / n;
}

export function disposeHead(head: ClassificationHead): void {
  head.weight.dispose();
  head.bias?.dispose();
}
