/**
 * One AdaMerging step's loss and ∂loss/∂λ: loss = Σk mean entropy of softmax(head_k(normalize(f_θ(λ)(x))))
 * over task k's unlabeled inputs. Labels are not part of the input.
 *
 * θ(λ) is built once. Then, one task and one batch at a time (one forward/backward graph alive at a time, so
 * memory does not grow with K), ∂loss_k/∂θ is taken, pulled back through θ(λ) to ∂loss_k/∂λ (merged.ts
 * lambdaGradient), and the K small gradients are summed in task order. Summing per task in λ-space (not in
 * θ-space) is what lets the `parallel: tasks` mode, which computes each task on its own worker, give the same
 * bits as one worker. With several batches per task, a task's loss is the
 * mean over its batches (equal batch sizes: the mean entropy over all its inputs).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../tensor/gradients';
import { clipVisionForward, ClipVisionConfig, Params } from '../../models/clip_vit';
import { ClassificationHead, headLogits } from '../../models/head';
import { checkLambda, LambdaLayout } from './coefficients';
import { meanEntropy } from './entropy';
import { lambdaGradient, mergedParams, TaskVectorStack } from './merged';

export interface AdaMergingModel {
  config: ClipVisionConfig;
  layout: LambdaLayout;
  /** θ0: every tensor the forward pass reads; the merged ones are replaced by θ(λ). */
  base: Params;
  taskVectors: TaskVectorStack;
  /** Build the weights from clamp(λ, 0, 1) (default true). */
  clamp?: boolean;
}

/** Preprocessed inputs [B, C, H, W] of one batch. No labels: the optimisation never sees them. */
export interface UnlabeledBatch {
  inputs: Float32Array;
  shape: [number, number, number, number];
}

export interface LossAndGrad {
  /** Per task: the mean entropy over its inputs this step. */
  lossPerTask: number[];
  /** ∂(Σ lossPerTask)/∂λ, flat, layout order. */
  grad: Float32Array;
}

function checkInputs(
  model: AdaMergingModel,
  heads: readonly ClassificationHead[],
  batches: readonly (readonly UnlabeledBatch[])[],
): void {
  // The first heads.length models of the layout are the targets (a head and inputs each); any after them are extra
  // pool models without inputs, whose λ is learned from the targets' objective alone.
  const K = model.layout.tasks.length;
  if (heads.length === 0 || heads.length > K) throw new Error(`AdaMerging: ${heads.length} heads for ${K} tasks`);
  if (batches.length !== heads.length)
    throw new Error(`AdaMerging: batches for ${batches.length} tasks, expected ${heads.length}`);
  batches.forEach((bs, k) => {
    if (bs.length === 0) throw new Error(`AdaMerging: no batch for task '${model.layout.tasks[k]}'`);
  });
}

/** The forward parameter map: θ0 with the merged tensors replaced. */
function withMerged(base: Params, merged: Params): Params {
  return { ...base, ...merged };
}

/**
 * The per-batch objective on the head's logits. AdaMerging's is the mean entropy (no labels). A lab may pass
 * another one (bench/adamerging_suite.ts --supervised: cross-entropy with the batch's labels, an upper bound of
 * what any coefficient learner can reach on the suite; that is a diagnosis, not AdaMerging).
 */
export type BatchObjective = (logits: tf.Tensor2D, batch: LabeledBatch) => tf.Scalar;

/** A batch that may carry labels: only a lab's objective reads them. */
export interface LabeledBatch extends UnlabeledBatch {
  labels?: Int32Array;
}

export const entropyObjective: BatchObjective = (logits) => meanEntropy(logits);

/** Objective of one batch under the weights `params` (a tf scalar the caller owns). */
function batchLoss(
  params: Params,
  config: ClipVisionConfig,
  head: ClassificationHead,
  x: tf.Tensor4D,
  batch: LabeledBatch,
  objective: BatchObjective = entropyObjective,
): tf.Scalar {
  return tf.tidy(() => objective(headLogits(head, clipVisionForward(params, config, x)), batch));
}

/**
 * Task k's loss and ∂loss_k/∂λ on its batches, given θ(λ) already built (`merged`, from `lam`): ∂loss_k/∂θ is
 * accumulated over the task's batches, then pulled back to λ.
 */
function taskGradOnMerged(
  model: AdaMergingModel,
  merged: Params,
  lam: tf.Tensor1D,
  head: ClassificationHead,
  batches: readonly LabeledBatch[],
  objective: BatchObjective = entropyObjective,
): { loss: number; grad: Float32Array } {
  const { layout, config } = model;
  const names = layout.tensors;
  const thetaList = names.map((n) => merged[n]);
  let acc: Params | undefined;
  let loss = 0;
  const w = 1 / batches.length;
  try {
    for (const b of batches) {
      const x = tf.tensor4d(b.inputs, b.shape);
      try {
        const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) => {
          const m: Params = {};
          names.forEach((n, l) => (m[n] = ts[l]));
          return batchLoss(withMerged(model.base, m), config, head, x, b, objective);
        })(thetaList);
        loss += value.dataSync()[0] * w;
        const prev = acc;
        acc = tf.tidy(() => {
          const next: Params = {};
          names.forEach((n, l) => {
            const g = w === 1 ? grads[l] : tf.mul(grads[l], w);
            next[n] = prev ? tf.add(prev[n], g) : tf.clone(g);
          });
          return next;
        });
        tf.dispose([value, ...grads]);
        if (prev) tf.dispose(Object.values(prev));
      } finally {
        x.dispose();
      }
    }
    return { loss, grad: lambdaGradient(layout, model.taskVectors, acc!, lam, { clamp: model.clamp ?? true }) };
  } finally {
    if (acc) tf.dispose(Object.values(acc));
  }
}

/**
 * ∂loss/∂λ from the per-task gradients: summed in task order in float64, rounded to float32 once. Both the
 * sequential step and the `parallel: tasks` reduce use this, so they give the same bits.
 */
export function sumTaskGradients(grads: readonly ArrayLike<number>[]): Float32Array {
  if (grads.length === 0) throw new Error('AdaMerging: no task gradients to sum');
  const n = grads[0].length;
  const acc = new Float64Array(n);
  grads.forEach((g, k) => {
    if (g.length !== n) throw new Error(`AdaMerging: task ${k}'s gradient has ${g.length} values, expected ${n}`);
    for (let i = 0; i < n; i++) acc[i] += g[i];
  });
  return Float32Array.from(acc);
}

/**
 * Loss per task and ∂loss/∂λ at `lambda` on the given batches (batches[k]: task k's). θ(λ) is built once; each
 * task's gradient is pulled back to λ on its own and the K gradients are summed by sumTaskGradients.
 */
export function entropyLossAndGrad(
  model: AdaMergingModel,
  heads: readonly ClassificationHead[],
  lambda: Float32Array,
  batches: readonly (readonly LabeledBatch[])[],
  objective: BatchObjective = entropyObjective,
): LossAndGrad {
  const { layout } = model;
  checkLambda(layout, lambda);
  checkInputs(model, heads, batches);
  const lam = tf.tensor1d(lambda);
  const merged = mergedParams(layout, model.base, model.taskVectors, lam, { clamp: model.clamp ?? true });
  try {
    const per = heads.map((head, k) => taskGradOnMerged(model, merged, lam, head, batches[k], objective));
    return { lossPerTask: per.map((p) => p.loss), grad: sumTaskGradients(per.map((p) => p.grad)) };
  } finally {
    tf.dispose([lam, ...Object.values(merged)]);
  }
}

/**
 * One task's loss and ∂loss_k/∂λ at `lambda` (the `parallel: tasks` unit of work): the same numbers as task k's
 * share of entropyLossAndGrad, bit for bit.
 */
export function taskEntropyLossAndGrad(
  model: AdaMergingModel,
  head: ClassificationHead,
  lambda: Float32Array,
  batches: readonly UnlabeledBatch[],
): { loss: number; grad: Float32Array } {
  checkLambda(model.layout, lambda);
  if (batches.length === 0) throw new Error('AdaMerging: no batch for the task');
  const lam = tf.tensor1d(lambda);
  const merged = mergedParams(model.layout, model.base, model.taskVectors, lam, { clamp: model.clamp ?? true });
  try {
    return taskGradOnMerged(model, merged, lam, head, batches);
  } finally {
    tf.dispose([lam, ...Object.values(merged)]);
  }
}

/** Loss per task only (no gradient): for monitoring and tests. */
export function entropyLosses(
  model: AdaMergingModel,
  heads: readonly ClassificationHead[],
  lambda: Float32Array,
  batches: readonly (readonly UnlabeledBatch[])[],
): number[] {
  checkLambda(model.layout, lambda);
  checkInputs(model, heads, batches);
  const lam = tf.tensor1d(lambda);
  const merged = mergedParams(model.layout, model.base, model.taskVectors, lam, { clamp: model.clamp ?? true });
  try {
    const params = withMerged(model.base, merged);
    return heads.map((head, k) => {
      let loss = 0;
      for (const b of batches[k]) {
        const v = tf.tidy(() => batchLoss(params, model.config, head, tf.tensor4d(b.inputs, b.shape), b));
        loss += v.dataSync()[0] / batches[k].length;
        v.dispose();
      }
      return loss;
    });
  } finally {
    tf.dispose([lam, ...Object.values(merged)]);
  }
}
