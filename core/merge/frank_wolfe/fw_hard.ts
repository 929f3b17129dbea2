/**
 * FW-Hard's update, pure: θ_{t+1} = θt + a·(s_t − θt) with a = γt · scaling, γt = 2/(t+2) · step_size
 * ("TA" local merge), or with the difference d = s_t − θt first trimmed to its top `keep` fraction by
 * magnitude over the whole model, all merged tensors together ("TIES" local merge: the reference's
 * ties_merge of θt and the one model s_t, where the elected sign is d's own sign, so only the trim remains).
 * The step is relative to θt, as the reference code (the paper text writes it relative to θ0).
 *
 * The TA update is the one linear kernel (core/merge/coefficients.ts) with base θt and the pool as models:
 * column p of the M × P table holds a at the candidate chosen for tensor p and 0 elsewhere, so
 * θ_{t+1}^p = θt^p + Σm c_m^p (θm^p − θt^p) = (1 − a)·θt^p + a·s_t^p (hardUpdateTable). The TIES update is
 * not linear in the models (the trim depends on d) and has its own per-tensor function.
 * Applying a column reads only its non-zero row (the chosen candidate): that is this module's update bit for
 * bit. Fed the whole pool, the kernel's non-uniform path rounds a·(θm − θt) before adding it, which agrees
 * within float32 rounding (test/frank-wolfe-math.test.ts checks both).
 *
 * Float32 arithmetic as the kernel computes it: d = f32(s − θ), θ' = f32(θ + f32(f32(a)·d)); with keep = 1
 * TIES equals TA bit for bit.
 */
import { linearMergeTensor } from '../coefficients';
import { BUCKETS, bitsToFloat, histogramHigh, histogramLow, histTotal, locateRank, thresholdRank } from '../topk';

import { fwStepSize, hardCoefficient } from './step_size';

export { fwStepSize, hardCoefficient };

export type LocalMerge = 'ta' | 'ties';

/**
 * The TA update as an M × P coefficient table (row m = candidate m, column p = tensor p) over base θt:
 * c[m·P + p] = a where choice[p] = m; a column whose choice is -1 (keep θt) is all zero.
 */
export function hardUpdateTable(choice: readonly number[], candidates: number, a: number): Float64Array {
  const P = choice.length;
  const table = new Float64Array(candidates * P);
  choice.forEach((m, p) => {
    if (m < -1 || m >= candidates || !Number.isInteger(m)) throw new Error(`FW: tensor ${p} chose candidate ${m}`);
    if (m >= 0) table[m * P + p] = a;
  });
  return table;
}

/** One tensor of the TA update; `s` undefined keeps θt. */
export function taUpdateTensor(theta: Float32Array, s: Float32Array | undefined, a: number): Float32Array {
  if (!s) return Float32Array.from(theta);
  if (s.length !== theta.length) throw new Error(`FW: target has ${s.length} values, θt ${theta.length}`);
  return linearMergeTensor(theta, [s], [a]);
}

/** A tensor of θt and its target (undefined: θt itself, d = 0). */
export interface UpdatePair {
  theta: Float32Array;
  s: Float32Array | undefined;
}

/**
 * The exact magnitude threshold of d = s − θt over every pair together for a keep fraction (topk.ts's rank
 * convention: |d| >= threshold is kept; 0 keeps everything). Two histogram passes over the pairs.
 */
export function deltaThreshold(pairs: readonly UpdatePair[], keep: number): number {
  if (!(keep > 0 && keep <= 1)) throw new Error(`FW: keep must be in (0, 1], got ${keep}`);
  const high = new Float64Array(BUCKETS);
  for (const { theta, s } of pairs) histogramHigh(high, s ?? theta, theta);
  const rank = thresholdRank(histTotal(high), keep);
  if (rank === 0) return 0;
  const { bucket, rest } = locateRank(high, rank);
  const low = new Float64Array(BUCKETS);
  for (const { theta, s } of pairs) histogramLow(low, s ?? theta, theta, bucket);
  return bitsToFloat(((bucket << 16) | locateRank(low, rest).bucket) >>> 0);
}

/** One tensor of the TIES update: θ + a·d where |d| >= threshold, θ elsewhere. */
export function tiesUpdateTensor(
  theta: Float32Array,
  s: Float32Array | undefined,
  a: number,
  threshold: number,
): Float32Array {
  if (!s) return Float32Array.from(theta);
  if (s.length !== theta.length) throw new Error(`FW: target has ${s.length} values, θt ${theta.length}`);
  const out = new Float32Array(theta.length);
  const f = Math.fround;
  const a32 = f(a);
  for (let i = 0; i < theta.length; i++) {
    const d = f(s[i] - theta[i]);
    out[i] = Math.abs(d) >= threshold ? theta[i] + f(a32 * d) : theta[i];
  }
  return out;
}

export interface HardUpdateOptions {
  localMerge: LocalMerge;
  /** a = γt · scaling. */
  a: number;
  /** TIES: fraction of d kept (default 0.2). */
  keep?: number;
}

/**
 * θ_{t+1} for every tensor in `tensors`: theta[n] is θt, target[n] is s_t's tensor (absent: keep θt). The
 * inputs are not changed.
 */
export function hardUpdate(
  theta: Readonly<Record<string, Float32Array>>,
  target: Readonly<Record<string, Float32Array | undefined>>,
  tensors: readonly string[],
  o: HardUpdateOptions,
): Record<string, Float32Array> {
  const pairs = tensors.map((n) => {
    const t = theta[n];
    if (!t) throw new Error(`FW: θt has no tensor '${n}'`);
    return { theta: t, s: target[n] };
  });
  const threshold = o.localMerge === 'ties' ? deltaThreshold(pairs, o.keep ?? 0.2) : 0;
  const out: Record<string, Float32Array> = {};
  pairs.forEach(({ theta: t, s }, p) => {
    out[tensors[p]] = o.localMerge === 'ties' ? tiesUpdateTensor(t, s, o.a, threshold) : taUpdateTensor(t, s, o.a);
  });
  return out;
}
