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

/**
 * acc (or out, when `last`) = [first ? 0 : acc] + Σ of up to four weighted task vectors, element by element, in
 * float32 arithmetic (every operation rounded to float32, as PyTorch computes: Math.fround of a float64 sum,
 * difference or product of float32 values is the float32 result, since float64 has more than twice the bits).
 * One pass over the elements per group of models keeps the running sum in a register; `last` also applies
 * θ0 + scale · sum. `ws` are float32 already; `weighted` false means every w is 1 (skipped: x · 1 = x).
 */
function group(
  out: Float32Array,
  acc: Float32Array,
  base: Float32Array,
  ms: readonly Float32Array[],
  ws: readonly number[],
  weighted: boolean,
  first: boolean,
  last: boolean,
  scale: number,
): void {
  const n = base.length;
  const f = Math.fround;
  const [m0, m1, m2, m3] = ms;
  const [w0, w1, w2, w3] = weighted ? ws : [1, 1, 1, 1];
  const K = ms.length;
  for (let i = 0; i < n; i++) {
    const b = base[i];
    let a = first ? 0 : acc[i];
    a = f(a + f(w0 * f(m0[i] - b)));
    if (K > 1) a = f(a + f(w1 * f(m1[i] - b)));
    if (K > 2) {
      a = f(a + f(w2 * f(m2[i] - b)));
      a = f(a + f(w3 * f(m3[i] - b)));
    }
    if (last) out[i] = b + f(scale * a);
    else acc[i] = a;
  }
}

/**
 * θ0 + Σk c_k τk over base.length elements, written into out (which may be a reused scratch buffer; acc is one
 * too, at least as long as base), in float32 arithmetic with the coefficients rounded to float32. When every
 * c_k is the same c (weight averaging, Task Arithmetic) it is computed as θ0 + c·Σk τk, summing the task
 * vectors first, the order those methods always used; otherwise each c_k τk is added into the accumulator in
 * model order. Fused: models go in groups of four (then two, then one), one pass over the elements per group.
 * The WebAssembly kernel (core/kernel/linear.wat) does the same operations in the same order.
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
  const uniform = coefficients.every((c) => c === coefficients[0]);
  const scale = Math.fround(uniform ? (coefficients[0] ?? 0) : 1);
  const weights = coefficients.map((c) => Math.fround(c));
  if (K === 0) {
    for (let i = 0; i < base.length; i++) out[i] = base[i] + Math.fround(scale * 0);
    return;
  }
  for (let g = 0; g < K;) {
    const size = K - g >= 4 ? 4 : K - g >= 2 ? 2 : 1;
    const ws = weights.slice(g, g + size);
    group(out, acc, base, models.slice(g, g + size), ws, !uniform, g === 0, g + size === K, scale);
    g += size;
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
 * models: θ0 + Σk c_k τk in float32 arithmetic, each c_k τk added into the accumulator in model order.
 */
export function linearMergeTaskVectors(
  base: Float32Array,
  taskVectors: readonly Float32Array[],
  coefficients: readonly number[],
): Float32Array {
  if (coefficients.length !== taskVectors.length)
    throw new Error(`linear merge: ${coefficients.length} coefficients for ${taskVectors.length} task vectors`);
  const f = Math.fround;
  const delta = new Float32Array(base.length);
  taskVectors.forEach((tv, k) => {
    const c = f(coefficients[k]);
    for (let i = 0; i < delta.length; i++) delta[i] += f(c * tv[i]);
  });
  return applyDelta(base, delta, 1);
}
