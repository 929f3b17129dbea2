/**
 * TIES-Merging: trim each task vector to its top `keep` fraction by magnitude over the whole model, elect a
 * sign per entry, then sum (or average) only the entries agreeing with the elected sign. θ = θ0 + λ · result.
 * Whole-model thresholds and the majority sign come from the passes declared in ties_passes.ts.
 */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { TensorMethod } from './method';
import { TIES_PASSES, TiesState } from './ties_passes';

export const tiesParams = strictObject({
  scaling: z.number().finite().default(0.3).describe('λ applied to the merged task vector'),
  keep: z.number().gt(0).lte(1).default(0.2).describe('fraction of each task vector kept by magnitude (top-k)'),
  merge: z.enum(['sum', 'mean']).default('sum').describe('dis-sum or dis-mean of the sign-agreeing entries'),
});
export type TiesParams = z.infer<typeof tiesParams>;

/**
 * The TIES merge of base.length elements into out (a reused chunk buffer is fine). Float32 arithmetic as the
 * per-tensor reference always did (each trimmed τ and each running sum rounded to float32), so outputs keep
 * their bytes when a tensor is merged in chunks.
 */
export function tiesMergeInto(
  out: Float32Array,
  base: Float32Array,
  models: readonly Float32Array[],
  thresholds: readonly number[],
  majoritySign: number,
  p: TiesParams,
): void {
  const K = models.length;
  const vals = new Float32Array(K);
  const mean = p.merge === 'mean';
  // float32 arithmetic throughout, as the linear kernel and PyTorch compute
  const f = Math.fround;
  const scaling = f(p.scaling);
  for (let i = 0; i < base.length; i++) {
    const b = base[i];
    let acc = 0;
    for (let k = 0; k < K; k++) {
      const tau = f(models[k][i] - b);
      const v = Math.abs(tau) >= thresholds[k] ? tau : 0;
      vals[k] = v;
      acc = f(acc + v);
    }
    const s = acc > 0 ? 1 : acc < 0 ? -1 : majoritySign;
    acc = 0;
    let kept = 0;
    for (let k = 0; k < K; k++) {
      const v = vals[k];
      if (s > 0 ? v > 0 : v < 0) {
        acc = f(acc + v);
        kept++;
      }
    }
    out[i] = b + f(scaling * (mean ? f(acc / Math.max(kept, 1)) : acc));
  }
}

export function tiesMergeTensor(
  base: Float32Array,
  models: readonly Float32Array[],
  thresholds: readonly number[],
  majoritySign: number,
  p: TiesParams,
): Float32Array {
  const out = new Float32Array(base.length);
  tiesMergeInto(out, base, models, thresholds, majoritySign, p);
  return out;
}

export const ties: TensorMethod<TiesParams> = {
  name: 'ties',
  summary: 'trim to top-k by magnitude, elect signs, disjoint merge',
  kind: 'tensor',
  params: tiesParams,
  passes: TIES_PASSES,
  mergeTensor({ name, base, models, params, state }) {
    const { thresholds, majoritySign } = state as TiesState;
    if (!thresholds || majoritySign === undefined) {
      throw new Error(`ties: tensor '${name}' merged before the threshold and sign passes ran`);
    }
    return tiesMergeTensor(base, models, thresholds, majoritySign, params);
  },
  mergeInto(out, { name, base, models, params, state }) {
    const { thresholds, majoritySign } = state as TiesState;
    if (!thresholds || majoritySign === undefined) {
      throw new Error(`ties: tensor '${name}' merged before the threshold and sign passes ran`);
    }
    tiesMergeInto(out, base, models, thresholds, majoritySign, params);
  },
};
