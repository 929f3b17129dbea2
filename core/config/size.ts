/**
 * Byte sizes as Hugging Face's `max_shard_size` spells them: a whole number of bytes, or a number with a unit,
 * decimal (KB, MB, GB, TB: powers of 1000) or binary (KiB, MiB, GiB, TiB: powers of 1024), case aside. A bare
 * `B` suffix is refused on purpose: mergekit reads "5B" as five billion bytes, so it would be ambiguous.
 * (The `bytes` package reads "GB" as 2^30, which disagrees with Hugging Face, hence this small parser.)
 */
const UNITS: Record<string, number> = {
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export const SIZE_HINT = 'a size such as "5GB", "500MB", "2GiB" or a whole number of bytes above 0';

/** The size in bytes, or undefined when `v` is not a size above 0. */
export function parseByteSize(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
    if (!m) return undefined;
    const unit = m[2].toLowerCase();
    if (unit === '') {
      if (m[1].includes('.')) return undefined;
      n = Number(m[1]);
    } else if (unit in UNITS) n = Math.floor(Number(m[1]) * UNITS[unit]);
    else return undefined;
  } else return undefined;
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}
