/**
 * The one linear merge kernel: θ^l = θ0^l + Σk c_k^l τk^l, in float32, one tensor at a time. Weight averaging
 * (c = 1/K), Task Arithmetic (c = λ), AdaMerging's final merge and the Frank-Wolfe update are this kernel with
 * different K × L coefficient tables (row k = model k, column l = tensor l; float64, so λ = 0.3 stays 0.3).
 */
import { applyDelta } from './task_vectors';

/** A K × L table with every entry c. */
export function uniformTable(models: number, tensors: number, c: number): Float64Array {
  return new Float64Array(models * tensors).fill(c);
}

/** Column l of a K × L table: the coefficient of each model for tensor l. */
export function tableColumn(table: Float64Array, models: number, tensors: number, l: number): number[] {
  return Array.from({ length: models }, (_, k) => table[k * tensors + l]);
}

/** Elements per cache block of the chunk kernels: the accumulator block stays in L1/L2 across the K sweeps. */
const BLOCK = 8192;

/**
 * θ0 + Σk c_k τk over base.length elements, written into out (which may be a reused scratch buffer; acc is one
 * too, at least as long as base). When every c_k is the same c (weight averaging, Task Arithmetic) it is
 * computed as θ0 + c·Σk τk, summing the task vectors first in float32, the order those methods always used, so
 * their outputs keep their bytes; otherwise each c_k τk is added into the float32 accumulator in model order.
 * Fused and cache-blocked: per block of elements, one sweep per model into the accumulator, then the output.
 */
export function linearMergeInto(
  out: Float32Array,
  acc: Float32Array,
  base: Float32Array,
  models: readonly Float32Array[],
  coefficients: readonly number[],
): void {
  const K = models.length;
  if (coefficients.length !== K) throw new Error(`linear merge: ${coefficients.length} coefficients for ${K} models`);
  const n = base.length;
  const uniform = coefficients.every((c) => c === coefficients[0]);
  const scale = uniform ? (coefficients[0] ?? 0) : 1;
  for (let lo = 0; lo < n; lo += BLOCK) {
    const hi = Math.min(n, lo + BLOCK);
    for (let i = lo; i < hi; i++) acc[i] = 0;
    for (let k = 0; k < K; k++) {
      const m = models[k];
      if (uniform) for (let i = lo; i < hi; i++) acc[i] += m[i] - base[i];
      else {
        const c = coefficients[k];
        for (let i = lo; i < hi; i++) acc[i] += c * (m[i] - base[i]);
      }
    }
    for (let i = lo; i < hi; i++) out[i] = base[i] + scale * acc[i];
  }
}

/** θ0 + Σk c_k τk for one whole tensor (a new array); see linearMergeInto. */
export function linearMergeTensor(
  base: Float32Array,
  models: readonly Float32Array[],
  coefficients: readonly number[],
): Float32Array {
  const out = new Float32Array(base.length);
  linearMergeInto(out, new Float32Array(base.length), base, models, coefficients);
  return out;
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
