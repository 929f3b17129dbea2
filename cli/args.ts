/**
 * The one parser behind every numeric option: commander turns its InvalidArgumentError into a usage error (exit
 * 2) before anything starts, so `--heartbeat-timeout abc` can no longer reach a workflow as NaN.
 */
import { InvalidArgumentError } from 'commander';

export interface NumberRule {
  /** Smallest accepted value (inclusive unless `above` is set). */
  min?: number;
  /** Values must be strictly greater than `min`. */
  above?: boolean;
  max?: number;
  integer?: boolean;
  /** What the number counts, for the message (e.g. "seconds"). */
  unit?: string;
}

/** The message a bad value gets: `--limit must be an integer >= 1, got 'abc'`. */
function expectation(name: string, r: NumberRule): string {
  const kind = r.integer ? 'an integer' : r.unit ? `a number of ${r.unit}` : 'a number';
  const bounds: string[] = [];
  if (r.min !== undefined) bounds.push(`${r.above ? '>' : '>='} ${r.min}`);
  if (r.max !== undefined) bounds.push(`<= ${r.max}`);
  return `${name} must be ${kind}${bounds.length ? ' ' + bounds.join(' and ') : ''}`;
}

/** Parser for a numeric option; rejects empty strings, NaN, infinities, fractions where integers are asked. */
export function numberArg(name: string, rule: NumberRule = {}) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    const ok =
      Number.isFinite(n) &&
      (!rule.integer || Number.isSafeInteger(n)) &&
      (rule.min === undefined || (rule.above ? n > rule.min : n >= rule.min)) &&
      (rule.max === undefined || n <= rule.max);
    if (!ok) throw new InvalidArgumentError(expectation(name, rule));
    return n;
  };
}

/** Parser for an integer option of at least `min`. */
export function intArg(name: string, min = 0) {
  return numberArg(name, { integer: true, min });
}
