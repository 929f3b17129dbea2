/**
 * θ(λ)^l = θ0^l + Σk c_k^l τk^l as tf tensors, differentiable in λ (a tf tensor), where c = clamp(λ, 0, 1)
 * when clamping is on (the gradient through the clamp is zero outside [0, 1], as torch.clamp's) and c = λ
 * otherwise; task-wise c_k^l = c_k.
 *
 * The task vectors are held stacked per tensor, τ^l as one [K, n_l] tensor, so each merged tensor is one
 * product [1, K] @ [K, n_l] and its λ-gradient one product back.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../tensor/gradients';
import { matMul } from '../../tensor/matmul';
import { checkLambda, LambdaLayout } from './coefficients';

/** τk^l for every merged tensor l, stacked over the tasks: stacked[name] is [K, n_l]. */
export interface TaskVectorStack {
  /** K. */
  tasks: number;
  /** Tensor name -> its shape. */
  shapes: Record<string, number[]>;
  stacked: Record<string, tf.Tensor2D>;
}

export type TensorValues = Float32Array | tf.Tensor;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Stack task vectors given per task as name -> values (Float32Array or tf tensor). Every task must hold
 * every name in `layout.tensors` with the shape given in `shapes`. The inputs are not disposed.
 */
export function stackTaskVectors(
  layout: LambdaLayout,
  shapes: Record<string, readonly number[]>,
  taskVectors: readonly Record<string, TensorValues>[],
): TaskVectorStack {
  const K = layout.tasks.length;
  if (taskVectors.length !== K) throw new Error(`AdaMerging: ${taskVectors.length} task vectors for ${K} tasks`);
  const out: TaskVectorStack = { tasks: K, shapes: {}, stacked: {} };
  try {
    for (const name of layout.tensors) {
      const shape = shapes[name];
      if (!shape) throw new Error(`AdaMerging: no shape for merged tensor '${name}'`);
      const n = numel(shape);
      const buf = new Float32Array(K * n);
      taskVectors.forEach((tv, k) => {
        const v = tv[name];
        if (!v) throw new Error(`AdaMerging: task '${layout.tasks[k]}' has no task vector for '${name}'`);
        const values = v instanceof tf.Tensor ? v.dataSync() : v;
        if (values.length !== n) {
          throw new Error(
            `AdaMerging: task '${layout.tasks[k]}' tensor '${name}' has ${values.length} values; expected ${n} ([${shape.join(', ')}])`,
          );
        }
        buf.set(values, k * n);
      });
      out.shapes[name] = [...shape];
      out.stacked[name] = tf.tensor2d(buf, [K, n]);
    }
  } catch (e) {
    disposeTaskVectorStack(out);
    throw e;
  }
  return out;
}

export function disposeTaskVectorStack(s: TaskVectorStack): void {
  for (const t of Object.values(s.stacked)) t.dispose();
}

/**
 * The coefficients of each merged tensor, in layout order: L tensors of shape [1, K] (task-wise, the same
 * one L times). Differentiable in `lambda`.
 */
export function coefficientRows(layout: LambdaLayout, lambda: tf.Tensor1D, clamp: boolean): tf.Tensor2D[] {
  checkLambda(layout, { length: lambda.size });
  const K = layout.tasks.length;
  const L = layout.tensors.length;
  const c = clamp ? tf.clipByValue(lambda, 0, 1) : lambda;
  if (layout.granularity === 'task') {
    const row = tf.reshape(c, [1, K]) as tf.Tensor2D;
    return layout.tensors.map(() => row);
  }
  // [K, L] -> L columns of [K] -> [1, K] each
  return tf.unstack(tf.reshape(c, [K, L]), 1).map((col) => tf.reshape(col, [1, K]) as tf.Tensor2D);
}

/** θ0^l + coef [1, K] @ τ^l [K, n], in the shape of θ0^l. */
export function mergeOne(base: tf.Tensor, stacked: tf.Tensor2D, coef: tf.Tensor2D): tf.Tensor {
  return tf.add(base, tf.reshape(matMul(coef, stacked), base.shape));
}

export interface MergeOptions {
  /** Build from clamp(λ, 0, 1) (default true). */
  clamp?: boolean;
}

/**
 * The merged tensors θ(λ) keyed by name, for the names in `layout.tensors` only (combine with θ0 for any
 * tensor not merged). New tensors owned by the caller; differentiable in `lambda` inside tf.grad.
 */
export function mergedParams(
  layout: LambdaLayout,
  base: Record<string, tf.Tensor>,
  tv: TaskVectorStack,
  lambda: tf.Tensor1D,
  opts: MergeOptions = {},
): Record<string, tf.Tensor> {
  if (tv.tasks !== layout.tasks.length)
    throw new Error(`AdaMerging: ${tv.tasks} stacked task vectors for ${layout.tasks.length} tasks`);
  return tf.tidy(() => {
    const rows = coefficientRows(layout, lambda, opts.clamp ?? true);
    const out: Record<string, tf.Tensor> = {};
    layout.tensors.forEach((name, l) => {
      const b = base[name];
      if (!b) throw new Error(`AdaMerging: θ0 has no tensor '${name}'`);
      const s = tv.stacked[name];
      if (!s) throw new Error(`AdaMerging: no task vectors for tensor '${name}'`);
      if (s.shape[1] !== b.size) {
        throw new Error(
          `AdaMerging: tensor '${name}' has ${b.size} values in θ0 but ${s.shape[1]} in the task vectors`,
        );
      }
      out[name] = mergeOne(b, s, rows[l]);
    });
    return out;
  });
}

/**
 * The pullback of θ(λ) with respect to λ: given G^l = ∂loss/∂θ^l for every merged tensor, returns ∂loss/∂λ
 * (flat, layout order). Uses ⟨G^l, τk^l⟩ = (τ^l @ G^l)[k] and differentiates only the coefficient map
 * (clamp, reshape), so the clamp rule is the one mergedParams uses.
 */
export function lambdaGradient(
  layout: LambdaLayout,
  tv: TaskVectorStack,
  paramGrads: Record<string, tf.Tensor>,
  lambda: tf.Tensor1D,
  opts: MergeOptions = {},
): Float32Array {
  const g = tf.tidy(() => {
    // inner[l] = [K, 1]: ⟨τk^l, G^l⟩ for every task k
    const inner = layout.tensors.map((name) => {
      const gl = paramGrads[name];
      if (!gl) throw new Error(`AdaMerging: no gradient for merged tensor '${name}'`);
      return matMul(tv.stacked[name], tf.reshape(gl, [-1, 1]));
    });
    const f = (lam: tf.Tensor): tf.Scalar => {
      const rows = coefficientRows(layout, lam as tf.Tensor1D, opts.clamp ?? true);
      return tf.addN(rows.map((row, l) => tf.sum(matMul(row, inner[l])))) as tf.Scalar;
    };
    return tf.grad(f)(lambda);
  });
  const out = g.dataSync() as Float32Array;
  g.dispose();
  return Float32Array.from(out);
}
