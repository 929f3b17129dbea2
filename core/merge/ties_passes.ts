/**
 * The whole-model passes TIES needs before merging, as map-over-shards + reduce declarations:
 *  1. threshold-high, threshold-low: the exact global top-k magnitude threshold of each task vector, by two
 *     radix-histogram passes (topk.ts);
 *  2. sign: Σ over all entries of the elected sign, whose sign is the majority sign used where Σk trimmed τk = 0.
 */
import type { PassContext, ShardPass } from './method';
import type { TiesParams } from './ties';
import {
  addSparse,
  BUCKETS,
  bitsToFloat,
  histogramHigh,
  histogramLow,
  histTotal,
  locateRank,
  thresholdRank,
  toSparse,
} from './topk';

/** What the passes reduce to, in order: {highs, rests}, then {thresholds}, then {thresholds, majoritySign}. */
export interface TiesState {
  /** Per model: the high-16-bit bucket holding the threshold, or -1 when the model keeps everything. */
  highs?: number[];
  /** Per model: rank of the threshold inside that bucket. */
  rests?: number[];
  /** Per model magnitude threshold (|τk| >= t_k is kept; 0 keeps everything). */
  thresholds?: number[];
  /** sign(Σ over all entries of the elected sign). */
  majoritySign?: number;
}

const state = (ctx: PassContext<TiesParams>) => ctx.state as TiesState;

/** Trimmed task vector entry: τ if |τ| >= threshold else 0. */
export function trimmed(model: Float32Array, base: Float32Array, t: number, i: number, tmp: Float32Array): number {
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

function sumHistograms(saved: readonly unknown[], models: number): Float64Array[] {
  const sums = Array.from({ length: models }, () => new Float64Array(BUCKETS));
  for (const doc of saved as { models: number[][] }[]) doc.models.forEach((sp, k) => addSparse(sums[k], sp));
  return sums;
}

const newHistograms = (ctx: PassContext<TiesParams>) =>
  Array.from({ length: ctx.models }, () => new Float64Array(BUCKETS));
const saveHistograms = (hists: Float64Array[]) => ({ models: hists.map(toSparse) });

const thresholdHigh: ShardPass<TiesParams, Float64Array[]> = {
  name: 'threshold-high',
  phase: 'threshold',
  start: newHistograms,
  tensor(hists, t) {
    t.models.forEach((m, k) => histogramHigh(hists[k], m, t.base));
  },
  save: saveHistograms,
  reduce(saved, ctx) {
    const highs: number[] = [];
    const rests: number[] = [];
    for (const h of sumHistograms(saved, ctx.models)) {
      const rank = thresholdRank(histTotal(h), ctx.params.keep);
      const { bucket, rest } = rank === 0 ? { bucket: -1, rest: 0 } : locateRank(h, rank);
      highs.push(bucket);
      rests.push(rest);
    }
    return { highs, rests } satisfies TiesState;
  },
};

const thresholdLow: ShardPass<TiesParams, Float64Array[]> = {
  name: 'threshold-low',
  phase: 'threshold',
  start: newHistograms,
  tensor(hists, t, ctx) {
    const { highs } = state(ctx);
    t.models.forEach((m, k) => {
      if (highs![k] >= 0) histogramLow(hists[k], m, t.base, highs![k]);
    });
  },
  save: saveHistograms,
  /** Exact per-model thresholds (float32 values; 0 keeps everything). */
  reduce(saved, ctx) {
    const { highs, rests } = state(ctx);
    const thresholds = sumHistograms(saved, ctx.models).map((h, k) => {
      if (highs![k] < 0) return 0;
      const { bucket } = locateRank(h, rests![k]);
      return bitsToFloat(((highs![k] << 16) | bucket) >>> 0);
    });
    return { thresholds } satisfies TiesState;
  },
};

const sign: ShardPass<TiesParams, { sum: number }> = {
  name: 'sign',
  phase: 'sign',
  start: () => ({ sum: 0 }),
  tensor(acc, t, ctx) {
    acc.sum += electedSignSum(t.base, t.models, state(ctx).thresholds!);
  },
  save: (acc) => acc,
  reduce(saved, ctx) {
    const sum = (saved as { sum: number }[]).reduce((a, s) => a + s.sum, 0);
    return { ...state(ctx), majoritySign: Math.sign(sum) } satisfies TiesState;
  },
};

export const TIES_PASSES = [thresholdHigh, thresholdLow, sign] as const;
