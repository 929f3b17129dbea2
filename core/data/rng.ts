/**
 * Small seeded pseudo-random numbers for reproducible data work. Only integer and basic float arithmetic
 * is used (no Math.random, no transcendental functions), so the same seed gives the same bytes on every
 * platform and Node version.
 */

/** A generator of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a fast 32-bit generator with a full 2^32 period; good enough for shuffles and noise. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mix a 32-bit value (the murmur3 finaliser). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Derive a 32-bit seed from a base seed and any number of labels (strings or integers), so that
 * independent streams ("task digits, split train") do not overlap. Non-integer or huge seeds are refused.
 */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  // fold the full safe-integer seed (up to 53 bits) into 32 bits
  let h = fmix32((seed >>> 0) ^ fmix32(Math.floor(seed / 4294967296) >>> 0) ^ 0x9e3779b9);
  for (const l of labels) {
    const s = typeof l === 'number' ? `#${l}` : l;
    // FNV-1a over UTF-16 code units, then mixed into h
    let f = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
      f ^= s.charCodeAt(i);
      f = Math.imul(f, 0x01000193);
    }
    h = fmix32(h ^ fmix32(f >>> 0) ^ Math.imul(s.length + 1, 0x27d4eb2d));
  }
  return h;
}

/** A generator seeded from a base seed and labels; see deriveSeed. */
export function rngFor(seed: number, ...labels: (string | number)[]): Rng {
  return mulberry32(deriveSeed(seed, ...labels));
}

/** Uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher-Yates shuffle in place; returns the same array. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** A random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}

/**
 * An approximately standard normal number: the sum of four uniforms, centred and scaled to variance 1
 * (Irwin-Hall). Bounded to about ±3.46; uses only + and *, so it is bit-reproducible everywhere.
 */
export function normalish(rng: Rng): number {
  return (rng() + rng() + rng() + rng() - 2) * 1.7320508075688772;
}
