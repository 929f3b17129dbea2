/**
 * The merge of elements [lo, hi) of one chunk, the same on the merge thread and on a kernel thread
 * (kernel_pool.ts): the linear kernel with a tensor's coefficients, or a tensor method's own merge (TIES). Both
 * are element-wise, so a chunk split into ranges gives the same bytes as the whole chunk at once.
 */
import { linearMergeInto } from '../merge/coefficients';
import { PassState, TensorMethod } from '../merge/method';
import { dataFreeMethod } from '../merge/registry';
import { allFinite } from '../kernel/finite';

/**
 * What the threads need to know to merge: small plain JSON, sent once when a pool starts. A base-free linear
 * merge (Σk c_k θk) gets a base of zeros from the stream, which the WebAssembly kernel does not even read.
 */
export type KernelSpec =
  { kind: 'linear'; baseFree?: boolean } | { kind: 'tensor'; method: string; params: unknown; state: PassState };

/** A chunk's arrays: out and acc (scratch) of at least base.length elements, the base and every model. */
export interface ChunkArrays {
  out: Float32Array;
  acc: Float32Array;
  base: Float32Array;
  models: readonly Float32Array[];
}

/** Merges [lo, hi) into a.out; false when an input holds NaN or ±Inf there (the caller refuses the input). */
export type RangeMerge = (tensor: string, a: ChunkArrays, coefs: readonly number[], lo: number, hi: number) => boolean;

/** The range merge for a spec (the tensor method's parameters parsed once, here), with the finiteness check. */
export function rangeMerge(spec: KernelSpec): RangeMerge {
  const merge = mergeOnly(spec);
  return (tensor, a, coefs, lo, hi) => {
    merge(tensor, a, coefs, lo, hi);
    return allFinite(a.base.subarray(lo, hi)) && a.models.every((m) => allFinite(m.subarray(lo, hi)));
  };
}

function mergeOnly(
  spec: KernelSpec,
): (tensor: string, a: ChunkArrays, coefs: readonly number[], lo: number, hi: number) => void {
  if (spec.kind === 'linear')
    return (_tensor, a, coefs, lo, hi) =>
      linearMergeInto(
        a.out.subarray(lo, hi),
        a.acc.subarray(lo, hi),
        a.base.subarray(lo, hi),
        a.models.map((m) => m.subarray(lo, hi)),
        coefs,
      );
  const method = dataFreeMethod(spec.method);
  if (method.kind !== 'tensor') throw new Error(`method '${spec.method}' merges with a coefficient table`);
  const m: TensorMethod<unknown> = method;
  const params = m.params.parse(spec.params);
  return (tensor, a, _coefs, lo, hi) =>
    m.mergeInto(a.out.subarray(lo, hi), {
      name: tensor,
      base: a.base.subarray(lo, hi),
      models: a.models.map((x) => x.subarray(lo, hi)),
      params,
      state: spec.state,
    });
}
