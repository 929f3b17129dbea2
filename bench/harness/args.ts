/** Command-line helpers of the bench scripts: `--name value` options and recipe overrides merged deeply. */

/** The value after `--name`, or `dflt`. */
export function opt(name: string): string | undefined;
export function opt(name: string, dflt: string): string;
export function opt(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}

/** `b` merged into `a`, objects key by key (arrays and other values replace). */
export function deepMerge<T>(a: T, b: Partial<T>): T {
  const out = { ...a } as Record<string, unknown>;
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' ? deepMerge(cur, v) : v;
  }
  return out as T;
}
