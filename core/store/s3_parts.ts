/** S3 multipart arithmetic: part sizes that scale with the object, and plans for composing objects by copy. */
import type { Segment } from './types';

export const MIN_PART = 5 * 1024 * 1024;
export const MAX_PART = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
/** Parts planned from a size estimate, leaving headroom under MAX_PARTS. */
const PLANNED_PARTS = 9_000;

const clamp = (n: number): number => Math.min(MAX_PART, Math.max(MIN_PART, n));

/**
 * The size of part `partNumber` (1-based): at least `base`, large enough that `sizeHint` bytes fit in 9000
 * parts, and doubling every 1000 parts so that an object of unknown size still fits in 10 000.
 */
export function partSizeFor(sizeHint: number | undefined, base: number, partNumber: number): number {
  const grown = base * 2 ** Math.floor((partNumber - 1) / 1000);
  const fit = sizeHint ? Math.ceil(sizeHint / PLANNED_PARTS) : 0;
  return clamp(Math.max(grown, fit));
}

/** A range of the head (uri undefined) or of a source object. */
export interface Range {
  uri?: string;
  offset: number;
  length: number;
}

export type UploadPiece =
  { kind: 'copy'; uri: string; offset: number; length: number } | { kind: 'send'; ranges: Range[]; length: number };

/**
 * Split `head` + segments into multipart pieces: server-side copies of segment ranges where a piece can reach
 * the 5 MiB minimum on its own, and sent pieces (the head, and the short stretches between copies) otherwise.
 * Every piece but the last is at least MIN_PART and none is over MAX_PART.
 */
export function copyPlan(headBytes: number, segments: readonly Segment[], base: number): UploadPiece[] {
  const total = headBytes + segments.reduce((a, s) => a + s.length, 0);
  const size = clamp(Math.max(base, Math.ceil(total / PLANNED_PARTS)));
  const out: UploadPiece[] = [];
  let buf: Range[] = [];
  let bufLen = 0;
  const flush = (): void => {
    if (bufLen) out.push({ kind: 'send', ranges: buf, length: bufLen });
    buf = [];
    bufLen = 0;
  };
  const take = (r: Range): void => {
    buf.push(r);
    bufLen += r.length;
    if (bufLen >= MIN_PART) flush();
  };
  if (headBytes) take({ offset: 0, length: headBytes });
  for (const seg of segments) {
    let pos = seg.offset;
    let rem = seg.length;
    if (bufLen && rem) {
      const n = Math.min(MIN_PART - bufLen, rem);
      take({ uri: seg.uri, offset: pos, length: n });
      pos += n;
      rem -= n;
    }
    while (!bufLen && rem >= MIN_PART) {
      let n = Math.min(rem, size);
      const left = rem - n;
      if (left > 0 && left < MIN_PART) n = rem <= MAX_PART ? rem : rem - MIN_PART;
      out.push({ kind: 'copy', uri: seg.uri, offset: pos, length: n });
      pos += n;
      rem -= n;
    }
    if (rem) take({ uri: seg.uri, offset: pos, length: rem });
  }
  flush();
  if (out.length > MAX_PARTS) throw new Error(`composing ${total} bytes needs ${out.length} parts, over ${MAX_PARTS}`);
  return out;
}

/** Small requests (stats, header reads, deletes) in flight at once: enough to hide S3's round trip, few enough for pools of hundreds. */
export const REQUESTS_AT_ONCE = 16;

/**
 * Map over items with at most `limit` calls in flight; results in input order. After a failure no new call
 * starts, and the first error is thrown once the running ones have ended (no call is left running unobserved).
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw failed.error;
  return out;
}
