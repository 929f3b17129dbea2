/**
 * The one linear merge kernel: θ^l = θ0^l + Σk c_k^l τk^l, in float32, one tensor at a time. Weight averaging
 * (c = 1/K), Task Arithmetic (c = λ), AdaMerging's final merge and the Frank-Wolfe update are this kernel with
 * different K × L coefficient tables (row k = model k, column l = tensor l; float64, so λ = 0.3 stays 0.3).
 */
import { addScaledTaskVector, applyDelta } from './task_vectors';

/** A K × L table with every entry c. */
export function uniformTable(models: number, tensors: number, c: number): Float64Array {
  return new Float64Array(models * tensors).fill(c);
}

/** Column l of a K × L table: the coefficient of each model for tensor l. */
export function tableColumn(table: Float64Array, models: number, tensors: number, l: number): number[] {
  return Array.from({ length: models }, (_, k) => table[k * tensors + l]);
}

/**
 * θ0 + Σk c_k τk. When every c_k is the same c (weight averaging, Task Arithmetic) it is computed as θ0 + c·Σk τk,
 * summing the task vectors first in float32, which is the order those methods always used: their outputs keep
 * their bytes. Otherwise each c_k τk is added into a float32 accumulator in model order.
 */
export function linearMergeTensor(
  base: Float32Array,
  models: readonly Float32Array[],
  coefficients: readonly number[],
): Float32Array {
  if (coefficients.length !== models.length)
    throw new Error(`linear merge: ${coefficients.length} coefficients for ${models.length} models`);
  const delta = new Float32Array(base.length);
  if (coefficients.every((c) => c === coefficients[0])) {
    for (const m of models) addScaledTaskVector(delta, m, base);
    return applyDelta(base, delta, coefficients[0] ?? 0);
  }
  models.forEach((m, k) => addScaledTaskVector(delta, m, base, coefficients[k]));
  return applyDelta(base, delta, 1);
}

/**
 * The same kernel when the inputs are task vectors τk themselves (AdaMerging++'s processed vectors), not
 * models: θ0 + Σk c_k τk, each c_k τk added into a float32 accumulator in model order.
 */
export function linearMergeTaskVectors(
  base: Float32Array,
  taskVectors: readonly Float32Array[],
  coefficients: readonly number[],
): Float32Array {
  if (coefficients.length !== taskVectors.length)
    throw new Error(`linear merge: ${coefficients.length} coefficients for ${taskVectors.length} task vectors`);
  const delta = new Float32Array(base.length);
  taskVectors.forEach((tv, k) => {
    const c = coefficients[k];
    for (let i = 0; i < delta.length; i++) delta[i] += c * tv[i];
  });
  return applyDelta(base, delta, 1);
}
