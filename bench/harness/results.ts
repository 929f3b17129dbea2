/**
 * bench/results.json (every figure, the shape) and bench/RESULTS.md, merged across runs: a run of
 * some benches replaces what earlier runs wrote for those benches and keeps the others. Which bench wrote
 * which figure, and on what machine, when and with what command, is kept in bench/runs.json beside them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Figure } from './types';

/** One bench's latest run, as bench/runs.json records it. */
export interface BenchRun {
  bench: string;
  description: string;
  /** ISO date and time (UTC) the bench started. */
  date: string;
  command: string;
  machine: string;
  seconds: number;
  /** Names of the figures it produced (their values are in results.json). */
  figures: string[];
  /** Why it did not run (unavailable) or how it failed; its earlier figures are then kept. */
  skipped?: string;
}

export interface ResultFiles {
  results: string;
  runs: string;
  markdown: string;
}

export function resultFiles(dir: string): ResultFiles {
  return {
    results: path.join(dir, 'results.json'),
    runs: path.join(dir, 'runs.json'),
    markdown: path.join(dir, 'RESULTS.md'),
  };
}

function readArray<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(v)) throw new Error(`${file}: expected a JSON array; move it away to start afresh`);
  return v as T[];
}

export interface Merged {
  figures: Figure[];
  runs: BenchRun[];
}

/**
 * Earlier results plus this run's: a bench that ran now replaces its earlier run and figures; a bench that
 * was skipped now keeps its earlier figures (and its earlier run record, with the skip noted).
 */
export function mergeResults(earlier: Merged, now: { run: BenchRun; figures: Figure[] }[]): Merged {
  const runs = new Map(earlier.runs.map((r) => [r.bench, r]));
  const byName = new Map(earlier.figures.map((f) => [f.name, f]));
  for (const { run, figures } of now) {
    const old = runs.get(run.bench);
    if (run.skipped !== undefined) {
      runs.set(run.bench, old ? { ...old, skipped: run.skipped } : run);
      continue;
    }
    for (const name of old?.figures ?? []) byName.delete(name);
    for (const f of figures) byName.set(f.name, f);
    runs.set(run.bench, run);
  }
  const order = [...runs.values()].sort((a, b) => a.bench.localeCompare(b.bench));
  const figures: Figure[] = [];
  const placed = new Set<string>();
  for (const r of order) {
    for (const name of r.figures) {
      const f = byName.get(name);
      if (f && !placed.has(name)) {
        figures.push(f);
        placed.add(name);
      }
    }
  }
  // figures of no known run (a results.json from before runs.json existed) stay, at the end
  for (const f of byName.values()) if (!placed.has(f.name)) figures.push(f);
  return { figures, runs: order };
}

export function readResults(files: ResultFiles): Merged {
  return { figures: readArray<Figure>(files.results), runs: readArray<BenchRun>(files.runs) };
}

/** Write each file whole under a temporary name, then rename it into place. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

export function writeResults(files: ResultFiles, merged: Merged): void {
  fs.mkdirSync(path.dirname(files.results), { recursive: true });
  writeAtomic(files.results, JSON.stringify(merged.figures, null, 2) + '\n');
  writeAtomic(files.runs, JSON.stringify(merged.runs, null, 2) + '\n');
  writeAtomic(files.markdown, renderMarkdown(merged));
}

/** A number with about four significant digits, without exponent noise for the usual ranges. */
export function fmt(v: number | null): string {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return Number(v.toPrecision(4)).toString();
  if (a >= 1e-4) return Number(v.toPrecision(3)).toString();
  return v.toExponential(2);
}

function metCell(f: Figure): string {
  if (f.met === null) return '';
  return f.met ? 'met' : '**not met**';
}

/** One figure as a table row: name, value, baseline, ratio, goal. */
export function figureRow(f: Figure): string {
  const base = f.baseline === null ? '–' : `${fmt(f.baseline_value)} ${f.unit} (${f.baseline})`;
  const goal = f.goal === null ? '' : `${f.goal}: ${metCell(f)}`;
  const cells = [f.name, `${fmt(f.value)} ${f.unit}`, base, f.ratio === null ? '–' : fmt(f.ratio), goal];
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

const TABLE_HEAD = '| figure | value | baseline (same run) | ratio | goal |\n| --- | --: | --- | --: | --- |';

export function renderMarkdown(m: Merged): string {
  const byName = new Map(m.figures.map((f) => [f.name, f]));
  const lines: string[] = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/harness/run.ts); each bench keeps its latest run, so the sections',
    'below may come from different dates and commands. Every figure is measured next to its baseline in the',
    'same run; ratio = value / baseline. The same figures are in `results.json`.',
    '',
  ];
  const goals = m.figures.filter((f) => f.goal !== null);
  if (goals.length) {
    const met = goals.filter((f) => f.met).length;
    lines.push(`Goals: ${met} of ${goals.length} met.`, '');
    for (const f of goals.filter((g) => !g.met)) {
      const ratio = f.ratio === null ? '' : `, ratio ${fmt(f.ratio)}`;
      lines.push(`- not met: \`${f.name}\` is ${fmt(f.value)} ${f.unit}${ratio}; goal ${f.goal}`);
    }
    if (goals.some((g) => !g.met)) lines.push('');
  }
  for (const r of m.runs) {
    lines.push(`## ${r.bench}`, '', r.description, '');
    lines.push(`- date: ${r.date} (${fmt(r.seconds)} s)`, `- command: \`${r.command}\``, `- machine: ${r.machine}`);
    if (r.skipped !== undefined) lines.push(`- latest attempt skipped: ${r.skipped}`);
    lines.push('');
    const rows = r.figures.map((n) => byName.get(n)).filter((f): f is Figure => f !== undefined);
    if (rows.length) lines.push(TABLE_HEAD, ...rows.map(figureRow), '');
    else lines.push('No figures yet.', '');
  }
  const known = new Set(m.runs.flatMap((r) => r.figures));
  const orphans = m.figures.filter((f) => !known.has(f.name));
  if (orphans.length) lines.push('## Other figures', '', TABLE_HEAD, ...orphans.map(figureRow), '');
  return lines.join('\n');
}
