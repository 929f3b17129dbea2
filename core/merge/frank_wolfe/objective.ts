/**
 * FW-Merging's objective f at a model θ and its gradient g = ∂f/∂θ over every merged tensor.
 *
 *   cross_entropy  f = Σj Σ_{i ∈ proxy_j} CE(head_j(normalize(f_θ(x_i))), y_i) / (N_j · S)
 *   entropy        f = Σj Σ_{i ∈ inputs_j} H(softmax(head_j(normalize(f_θ(x_i))))) / (N_j · S)
 *
 * N_j is the number of rows of target j, S = `scaleTasks` (default: the number of targets). This is the
 * reference's scaling: batch-1 losses each divided by (samples × tasks) and summed by backward(); rows are
 * processed here in batches, which gives the same sum (the forward pass is row-wise). With S = 1 the entropy
 * objective is AdaMerging's Σj mean entropy_j (FW-Soft's step sizes use it).
 *
 * One forward/backward graph is alive at a time: targets and batches are taken one by one and their
 * gradients summed into one accumulator (so memory does not grow with the number of targets).
 * No I/O: batches and heads come in as values.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../tensor/gradients';
import { clipVisionForward, ClipVisionConfig, Params } from '../../models/clip_vit';
import { ClassificationHead, headLogits } from '../../models/head';
import { crossEntropy } from '../../suite/train';
import { meanEntropy } from '../adamerging/entropy';

export type ObjectiveKind = 'cross_entropy' | 'entropy';

/** Preprocessed inputs [B, C, H, W]; labels are required by cross_entropy and never read by entropy. */
export interface ObjectiveBatch {
  inputs: Float32Array;
  shape: [number, number, number, number];
  labels?: Int32Array;
}

export interface ObjectiveTarget {
  name: string;
  head: ClassificationHead;
  batches: readonly ObjectiveBatch[];
}

export interface ObjectiveOptions {
  kind: ObjectiveKind;
  /** S in the scaling 1/(N_j · S); default the number of targets given. */
  scaleTasks?: number;
}

/** g per merged tensor, as tf tensors the caller owns, and the objective's value per target. */
export interface ObjectiveGradTensors {
  lossPerTarget: number[];
  grads: Params;
}

export interface ObjectiveGradient {
  /** Per target: its term of f (already scaled). */
  lossPerTarget: number[];
  /** Σ of lossPerTarget. */
  loss: number;
  /** ∂f/∂θ per merged tensor name (float32, the tensor's row-major layout). */
  grad: Record<string, Float32Array>;
}

function rows(t: ObjectiveTarget): number {
  return t.batches.reduce((a, b) => a + b.shape[0], 0);
}

function checkTargets(targets: readonly ObjectiveTarget[], o: ObjectiveOptions): number {
  if (targets.length === 0) throw new Error('FW objective: no target task');
  const S = o.scaleTasks ?? targets.length;
  if (!(S > 0)) throw new Error(`FW objective: scaleTasks must be positive, got ${S}`);
  for (const t of targets) {
    if (t.batches.length === 0 || rows(t) === 0) throw new Error(`FW objective: target '${t.name}' has no rows`);
    if (o.kind === 'cross_entropy') {
      for (const b of t.batches) {
        if (!b.labels) throw new Error(`FW objective: cross_entropy needs labels; target '${t.name}' has none`);
        if (b.labels.length !== b.shape[0])
          throw new Error(`FW objective: target '${t.name}': ${b.labels.length} labels for ${b.shape[0]} rows`);
      }
    }
  }
  return S;
}

/** The batch's mean loss (a scalar the caller owns). */
function batchLoss(
  params: Params,
  config: ClipVisionConfig,
  head: ClassificationHead,
  b: ObjectiveBatch,
  x: tf.Tensor4D,
  kind: ObjectiveKind,
): tf.Scalar {
  return tf.tidy(() => {
    const logits = headLogits(head, clipVisionForward(params, config, x));
    return kind === 'entropy' ? meanEntropy(logits) : crossEntropy(logits, b.labels!);
  });
}

/**
 * g at `params` (every tensor the forward reads) with respect to the tensors named in `names`, summed over
 * `targets`. The gradient tensors are new and owned by the caller; `params` is not disposed.
 */
export function objectiveGradTensors(
  config: ClipVisionConfig,
  params: Params,
  names: readonly string[],
  targets: readonly ObjectiveTarget[],
  o: ObjectiveOptions,
): ObjectiveGradTensors {
  const S = checkTargets(targets, o);
  const theta = names.map((n) => {
    const t = params[n];
    if (!t) throw new Error(`FW objective: θ has no tensor '${n}'`);
    return t;
  });
  let acc: tf.Tensor[] | undefined;
  const lossPerTarget: number[] = [];
  try {
    for (const target of targets) {
      const N = rows(target);
      let loss = 0;
      for (const b of target.batches) {
        const w = b.shape[0] / (N * S); // the batch mean counts for its rows, each at 1/(N·S)
        const x = tf.tensor4d(b.inputs, b.shape);
        try {
          const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) => {
            const m: Params = { ...params };
            names.forEach((n, l) => (m[n] = ts[l]));
            return tf.mul(batchLoss(m, config, target.head, b, x, o.kind), w) as tf.Scalar;
          })(theta);
          loss += value.dataSync()[0];
          const prev = acc;
          acc = prev ? grads.map((g, l) => tf.add(prev[l], g)) : grads.map((g) => tf.clone(g));
          tf.dispose([value, ...grads]);
          if (prev) tf.dispose(prev);
        } finally {
          x.dispose();
        }
      }
      lossPerTarget.push(loss);
    }
    const grads: Params = {};
    names.forEach((n, l) => (grads[n] = acc![l]));
    acc = undefined;
    return { lossPerTarget, grads };
  } finally {
    if (acc) tf.dispose(acc);
  }
}

/** g as Float32Arrays per tensor name, summed over the targets. */
export function objectiveGradient(
  config: ClipVisionConfig,
  params: Params,
  names: readonly string[],
  targets: readonly ObjectiveTarget[],
  o: ObjectiveOptions,
): ObjectiveGradient {
  const { lossPerTarget, grads } = objectiveGradTensors(config, params, names, targets, o);
  const grad: Record<string, Float32Array> = {};
  try {
    for (const n of names) grad[n] = Float32Array.from(grads[n].dataSync());
  } finally {
    tf.dispose(Object.values(grads));
  }
  return { lossPerTarget, loss: lossPerTarget.reduce((a, b) => a + b, 0), grad };
}

/**
 * g_j for each target separately (FW-Soft), each scaled as its term of the whole objective (S = the number of
 * targets unless told). Computed one target at a time; to hold one g at a time, call objectiveGradient with
 * one target and `scaleTasks` instead.
 */
export function objectiveGradientPerTarget(
  config: ClipVisionConfig,
  params: Params,
  names: readonly string[],
  targets: readonly ObjectiveTarget[],
  o: ObjectiveOptions,
): ObjectiveGradient[] {
  const S = checkTargets(targets, o);
  return targets.map((t) => objectiveGradient(config, params, names, [t], { ...o, scaleTasks: S }));
}

/** f at `params`, per target (forward only): for monitoring and finite-difference checks. */
export function objectiveLoss(
  config: ClipVisionConfig,
  params: Params,
  targets: readonly ObjectiveTarget[],
  o: ObjectiveOptions,
): number[] {
  const S = checkTargets(targets, o);
  return targets.map((t) => {
    const N = rows(t);
    let loss = 0;
    for (const b of t.batches) {
      const v = tf.tidy(() => batchLoss(params, config, t.head, b, tf.tensor4d(b.inputs, b.shape), o.kind));
      loss += (v.dataSync()[0] * b.shape[0]) / (N * S);
      v.dispose();
    }
    return loss;
  });
}
