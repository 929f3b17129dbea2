/**
 * TIES-Merging: trim each task vector to its top `keep` fraction by magnitude over the whole model, elect a
 * sign per entry, then sum (or average) only the entries agreeing with the elected sign. θ = θ0 + λ · result.
 * Whole-model thresholds and the majority sign come from streaming passes (see topk.ts and the workflow).
 */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { MergeMethod } from './method';

export const tiesParams = strictObject({
  scaling: z.number().finite().default(0.3).describe('λ applied to the merged task vector'),
  keep: z.number().gt(0).lte(1).default(0.2).describe('fraction of each task vector kept by magnitude (top-k)'),
  merge: z.enum(['sum', 'mean']).default('sum').describe('dis-sum or dis-mean of the sign-agreeing entries'),
});
export type TiesParams = z.infer<typeof tiesParams>;

/** Trimmed task vector entry: τ if |τ| >= threshold else 0. */
function trimmed(model: Float32Array, base: Float32Array, t: number, i: number, tmp: Float32Array): number {
  tmp[0] = model[i] - base[i];
  return Math.abs(tmp[0]) >= t ? tmp[0] : 0;
}

/** Σ over entries of sign(Σk trimmed τk): the per-shard contribution to the majority sign. */
export function electedSignSum(
  base: Float32Array,
  models: readonly Float32Array[],
  thresholds: readonly number[],
): number {
  const tmp = new Float32Array(1);
  const sum = new Float32Array(1);
  let s = 0;
  for (let i = 0; i < base.length; i++) {
    sum[0] = 0;
    for (let k = 0; k < models.length; k++) sum[0] += trimmed(models[k], base, thresholds[k], i, tmp);
    s += Math.sign(sum[0]);
  }
  return s;
}

export function tiesMergeTensor(
  base: Float32Array,
  models: readonly Float32Array[],
  thresholds: readonly number[],
  majoritySign: number,
  p: TiesParams,
): Float32Array {
  const K = models.length;
  const out = new Float32Array(base.length);
  const tmp = new Float32Array(1);
  const vals = new Float32Array(K);
  const acc = new Float32Array(1);
  for (let i = 0; i < base.length; i++) {
    acc[0] = 0;
    for (let k = 0; k < K; k++) {
      vals[k] = trimmed(models[k], base, thresholds[k], i, tmp);
      acc[0] += vals[k];
    }
    const s = acc[0] > 0 ? 1 : acc[0] < 0 ? -1 : majoritySign;
    acc[0] = 0;
    let kept = 0;
    for (let k = 0; k < K; k++) {
      const v = vals[k];
      if (s > 0 ? v > 0 : v < 0) {
        acc[0] += v;
        kept++;
      }
    }
    const agg = p.merge === 'mean' ? acc[0] / Math.max(kept, 1) : acc[0];
    out[i] = base[i] + p.scaling * agg;
  }
  return out;
}

export const ties: MergeMethod<TiesParams> = {
  name: 'ties',
  summary: 'trim to top-k by magnitude, elect signs, disjoint merge',
  params: tiesParams,
  globalPasses: ['magnitude', 'sign'],
  mergeTensor({ name, base, models, params, global }) {
    if (!global.thresholds || global.majoritySign === undefined) {
      throw new Error(`ties: tensor '${name}' merged before the magnitude and sign passes ran`);
    }
    return tiesMergeTensor(base, models, global.thresholds, global.majoritySign, params);
  },
};
