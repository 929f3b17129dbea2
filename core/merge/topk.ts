/**
 * Exact global top-k magnitude threshold, streamed: two radix-histogram passes over float32 bit patterns.
 *
 * For non-negative float32 values the IEEE bit pattern orders like the value, so the k-th smallest |τ|
 * is found by counting the high 16 bits of every |τ| (pass 1), picking the bucket holding rank k, then
 * counting the low 16 bits of the entries inside that bucket (pass 2). The result is the exact float32
 * value of the k-th smallest magnitude: no sampling and no approximation, and memory is 2^16 counters
 * per model whatever the model size. NaN magnitudes are not counted.
 *
 * Rank convention, as in the TIES reference code (`topk_values_mask`): with d entries and keep fraction
 * K, k = d − floor(d·K) and the threshold is the k-th smallest |τ| (1-indexed); entries with |τ| >= threshold
 * are kept. Ties at the threshold are all kept, as in the reference.
 */

export const BUCKETS = 1 << 16;
const NAN_BITS_MIN = 0x7f800001;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function magnitudeBits(v: number): number {
  f32[0] = v;
  return u32[0] & 0x7fffffff;
}

export function bitsToFloat(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** Pass 1: count the high 16 bits of |model − base|. */
export function histogramHigh(hist: Float64Array, model: Float32Array, base: Float32Array): void {
  const t = new Float32Array(1);
  const tb = new Uint32Array(t.buffer);
  for (let i = 0; i < model.length; i++) {
    t[0] = model[i] - base[i];
    const b = tb[0] & 0x7fffffff;
    if (b >= NAN_BITS_MIN) continue;
    hist[b >>> 16]++;
  }
}

/** Pass 2: among entries whose high 16 bits equal `high`, count the low 16 bits. */
export function histogramLow(hist: Float64Array, model: Float32Array, base: Float32Array, high: number): void {
  const t = new Float32Array(1);
  const tb = new Uint32Array(t.buffer);
  for (let i = 0; i < model.length; i++) {
    t[0] = model[i] - base[i];
    const b = tb[0] & 0x7fffffff;
    if (b >>> 16 === high && b < NAN_BITS_MIN) hist[b & 0xffff]++;
  }
}

/** 1-indexed rank of the threshold among `count` magnitudes; 0 means keep everything. */
export function thresholdRank(count: number, keep: number): number {
  if (keep >= 1) return 0;
  return count - Math.floor(count * keep);
}

/** Bucket holding the `rank`-th smallest entry, and the rank left inside that bucket. */
export function locateRank(hist: ArrayLike<number>, rank: number): { bucket: number; rest: number } {
  let cum = 0;
  for (let b = 0; b < hist.length; b++) {
    if (cum + hist[b] >= rank) return { bucket: b, rest: rank - cum };
    cum += hist[b];
  }
  throw new Error(`rank ${rank} is beyond the ${cum} counted magnitudes`);
}

export function histTotal(hist: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < hist.length; i++) s += hist[i];
  return s;
}

/** Sparse [bucket, count] pairs, for storing histograms compactly. */
export function toSparse(hist: Float64Array): number[] {
  const out: number[] = [];
  for (let b = 0; b < hist.length; b++) if (hist[b]) out.push(b, hist[b]);
  return out;
}

export function addSparse(hist: Float64Array, sparse: readonly number[]): void {
  for (let i = 0; i < sparse.length; i += 2) hist[sparse[i]] += sparse[i + 1];
}
