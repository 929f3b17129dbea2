/** The benches `npm run bench` knows: every module in dist/bench/figures/ that exports `bench: Bench`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Bench } from './types';

/** dist/bench/harness -> dist/bench/figures */
export const FIGURES_DIR = path.resolve(__dirname, '..', 'figures');

export function isBench(v: unknown): v is Bench {
  const b = v as Partial<Bench> | undefined;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.name === 'string' &&
    typeof b.description === 'string' &&
    typeof b.run === 'function' &&
    (b.unavailable === undefined || typeof b.unavailable === 'function')
  );
}

export function loadBench(file: string): Bench {
  const mod = require(file) as { bench?: unknown };
  if (!isBench(mod.bench)) throw new Error(`${file}: exports no 'bench' ({ name, description, run }); fix the module`);
  return mod.bench;
}

export interface Found {
  file: string;
  bench: Bench;
}

/** Every bench in `dir`, sorted by name; names must be unique. */
export function discoverBenches(dir = FIGURES_DIR): Found[] {
  if (!fs.existsSync(dir)) throw new Error(`${dir}: no compiled benches; run 'npm run build' first`);
  const out: Found[] = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith('.js')) continue;
    const file = path.join(dir, f);
    const mod = require(file) as { bench?: unknown };
    if (isBench(mod.bench)) out.push({ file, bench: mod.bench });
  }
  const seen = new Map<string, string>();
  for (const { file, bench } of out) {
    const other = seen.get(bench.name);
    if (other) throw new Error(`bench name '${bench.name}' is used by both ${other} and ${file}; rename one`);
    seen.set(bench.name, file);
  }
  return out.sort((a, b) => a.bench.name.localeCompare(b.bench.name));
}
