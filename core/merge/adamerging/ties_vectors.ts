/**
 * AdaMerging++'s task vectors: each τk replaced by its TIES-processed part, per task and not summed.
 *   1. Trim: keep in τk the entries with |τ| >= t_k, t_k the exact k-th smallest magnitude over the whole
 *      flattened task vector (all tensors together), k = d − floor(d·keep); ties at t_k are kept
 *      (core/merge/topk.ts's convention and code).
 *   2. Elect: s = sign(Σk trimmed τk) per entry (float32 sum in task order, as core/merge/ties.ts); where the
 *      sum is 0, the majority sign sign(Σ over all entries of s).
 *   3. Keep in each trimmed τk only the entries whose sign equals s (with s = 0 the negative ones, as the
 *      reference's where(s > 0, τ > 0, τ < 0)).
 * Held in memory (the AdaMerging worker holds every τk anyway); the thresholds are exact.
 */
import { electedSignSum } from '../ties_passes';
import { BUCKETS, bitsToFloat, histogramHigh, histogramLow, histTotal, locateRank, thresholdRank } from '../topk';

/** Task vectors of one task: one Float32Array per merged tensor, in a fixed tensor order. */
export type TaskVectorList = readonly Float32Array[];

/** Exact magnitude threshold of one whole task vector for a keep fraction (0 keeps everything). */
export function taskVectorThreshold(tensors: TaskVectorList, keep: number): number {
  if (!(keep > 0 && keep <= 1)) throw new Error(`AdaMerging++: keep must be in (0, 1], got ${keep}`);
  const zeros = (n: number) => new Float32Array(n);
  const high = new Float64Array(BUCKETS);
  for (const t of tensors) histogramHigh(high, t, zeros(t.length));
  const rank = thresholdRank(histTotal(high), keep);
  if (rank === 0) return 0;
  const { bucket, rest } = locateRank(high, rank);
  const low = new Float64Array(BUCKETS);
  for (const t of tensors) histogramLow(low, t, zeros(t.length), bucket);
  return bitsToFloat(((bucket << 16) | locateRank(low, rest).bucket) >>> 0);
}

export interface TiesVectors {
  /** Per task, per tensor: the processed task vector. */
  vectors: Float32Array[][];
  /** Per task magnitude threshold. */
  thresholds: number[];
  /** Sign used where Σk trimmed τk is exactly 0. */
  majoritySign: number;
}

/**
 * AdaMerging++ processing of K task vectors given as taskVectors[k][l] (tensor l of task k; every task the
 * same tensors in the same order). The inputs are not modified.
 */
export function tiesTaskVectors(taskVectors: readonly TaskVectorList[], keep = 0.2): TiesVectors {
  const K = taskVectors.length;
  if (K === 0) throw new Error('AdaMerging++: no task vectors');
  const L = taskVectors[0].length;
  for (let k = 0; k < K; k++) {
    if (taskVectors[k].length !== L)
      throw new Error(`AdaMerging++: task ${k} has ${taskVectors[k].length} tensors, task 0 has ${L}`);
    for (let l = 0; l < L; l++) {
      if (taskVectors[k][l].length !== taskVectors[0][l].length) {
        throw new Error(
          `AdaMerging++: tensor ${l} has ${taskVectors[k][l].length} values in task ${k}, ${taskVectors[0][l].length} in task 0`,
        );
      }
    }
  }
  const thresholds = taskVectors.map((tv) => taskVectorThreshold(tv, keep));
  let signSum = 0;
  for (let l = 0; l < L; l++) {
    const col = taskVectors.map((tv) => tv[l]);
    signSum += electedSignSum(new Float32Array(col[0].length), col, thresholds);
  }
  const majoritySign = Math.sign(signSum);
  const vectors: Float32Array[][] = taskVectors.map(() => []);
  const vals = new Float32Array(K);
  const acc = new Float32Array(1);
  for (let l = 0; l < L; l++) {
    const n = taskVectors[0][l].length;
    const outs = taskVectors.map(() => new Float32Array(n));
    for (let i = 0; i < n; i++) {
      acc[0] = 0;
      for (let k = 0; k < K; k++) {
        const v = taskVectors[k][l][i];
        vals[k] = Math.abs(v) >= thresholds[k] ? v : 0;
        acc[0] += vals[k];
      }
      const s = acc[0] > 0 ? 1 : acc[0] < 0 ? -1 : majoritySign;
      for (let k = 0; k < K; k++) {
        const v = vals[k];
        if (s > 0 ? v > 0 : v < 0) outs[k][i] = v;
      }
    }
    outs.forEach((o, k) => vectors[k].push(o));
  }
  return { vectors, thresholds, majoritySign };
}
