/**
 * `npm run bench [-- NAME...] [--list] [--quick] [--keep]`: runs the benches of dist/bench/figures (each in
 * its own process), prints every figure next to its baseline, skips a bench that says it is unavailable
 * (with the reason), and merges the figures into bench/results.json and bench/RESULTS.md.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { discoverBenches, FIGURES_DIR, Found } from './discover';
import { describeMachine } from './machine';
import { BenchRun, fmt, mergeResults, readResults, resultFiles, writeResults } from './results';
import type { Outcome } from './run_one';
import type { Figure } from './types';

/** dist/bench/harness -> <repo>/bench */
const RESULTS_DIR = path.resolve(__dirname, '..', '..', '..', 'bench');

interface Options {
  list?: boolean;
  quick?: boolean;
  keep?: boolean;
  out: string;
  figures: string;
}

function usageError(msg: string): never {
  process.stderr.write(`mergeflow bench: ${msg}\n`);
  process.exit(2);
}

function pick(all: Found[], names: string[]): Found[] {
  if (names.length === 0) return all;
  return names.map((n) => {
    const f = all.find((b) => b.bench.name === n);
    if (!f)
      usageError(
        `no bench named '${n}'; 'npm run bench -- --list' shows them (${all.map((b) => b.bench.name).join(', ')})`,
      );
    return f;
  });
}

/** Run one bench in a child process; its progress goes to our stderr as it comes. */
function runChild(found: Found, opts: Options, scratch: string): Outcome {
  const out = path.join(scratch, 'outcome.json');
  const args = [path.join(__dirname, 'run_one.js'), found.file, out, scratch, ...(opts.quick ? ['--quick'] : [])];
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (fs.existsSync(out)) return JSON.parse(fs.readFileSync(out, 'utf8')) as Outcome;
  return { error: `the bench process ended (${r.signal ?? `exit ${r.status}`}) without writing its outcome` };
}

function printFigures(figures: Figure[]): void {
  for (const f of figures) {
    const base =
      f.baseline === null ? '' : `  vs ${fmt(f.baseline_value)} ${f.unit} (${f.baseline}), ratio ${fmt(f.ratio)}`;
    const goal = f.goal === null ? '' : `  [${f.goal}: ${f.met ? 'met' : 'NOT met'}]`;
    process.stdout.write(`  ${f.name}: ${fmt(f.value)} ${f.unit}${base}${goal}\n`);
  }
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('run the benchmarks and write bench/results.json and bench/RESULTS.md')
    .argument('[names...]', 'benches to run (default: all)')
    .option('--list', 'list the benches and whether they can run here')
    .option('--quick', 'smaller inputs, for a smoke run (figure names say so)')
    .option('--keep', 'keep each bench’s scratch folder')
    .option('--out <dir>', 'where results.json, runs.json and RESULTS.md go', RESULTS_DIR)
    .option('--figures <dir>', 'folder of compiled bench modules', FIGURES_DIR)
    .showHelpAfterError();
  program.parse(process.argv);
  const opts = program.opts<Options>();
  const all = discoverBenches(path.resolve(opts.figures));
  if (opts.list) {
    for (const { bench } of all) {
      const why = await bench.unavailable?.();
      process.stdout.write(`${bench.name.padEnd(22)} ${bench.description}${why ? `  (unavailable: ${why})` : ''}\n`);
    }
    return;
  }
  const chosen = pick(all, program.args);
  const machine = describeMachine();
  // settings the benches read from the environment belong to the command that reproduces the figures
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('MERGEFLOW_BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const args = process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [];
  const command = [...env, 'npm run bench', ...args].join(' ');
  process.stdout.write(`machine: ${machine}\n`);
  const files = resultFiles(path.resolve(opts.out));
  // merged into the files after each bench, so an interrupted run keeps what it measured
  const record = (run: BenchRun, figures: Figure[]) =>
    writeResults(files, mergeResults(readResults(files), [{ run, figures }]));
  let failed = 0;
  for (const found of chosen) {
    const { bench } = found;
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `mergeflow-bench-${bench.name}-`));
    const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const t0 = performance.now();
    process.stdout.write(`\n== ${bench.name}: ${bench.description}\n`);
    const outcome = runChild(found, opts, scratch);
    const seconds = (performance.now() - t0) / 1000;
    const run: BenchRun = {
      bench: bench.name,
      description: bench.description,
      date,
      command,
      machine,
      seconds,
      figures: [],
    };
    if ('figures' in outcome) {
      const figures = outcome.figures as Figure[];
      run.figures = figures.map((f) => f.name);
      printFigures(figures);
      record(run, figures);
    } else if ('unavailable' in outcome) {
      process.stdout.write(`  skipped: ${outcome.unavailable}\n`);
      record({ ...run, skipped: `unavailable: ${outcome.unavailable}` }, []);
    } else {
      failed++;
      process.stdout.write(`  FAILED: ${outcome.error.split('\n')[0]}\n`);
      process.stderr.write(`${outcome.error}\n`);
      record({ ...run, skipped: `failed: ${outcome.error.split('\n')[0]}` }, []);
    }
    if (opts.keep) process.stdout.write(`  scratch kept: ${scratch}\n`);
    else fs.rmSync(scratch, { recursive: true, force: true });
  }
  const merged = readResults(files);
  if (!fs.existsSync(files.results)) writeResults(files, merged);
  const goals = merged.figures.filter((f) => f.goal !== null);
  const goalsMet = goals.length ? `${goals.filter((f) => f.met).length} of ${goals.length} goals met` : 'no goals';
  process.stdout.write(
    `\nwrote ${files.results} and ${files.markdown} (${merged.figures.length} figures, ${goalsMet})\n`,
  );
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`mergeflow bench: ${(e as Error).message}\n`);
  process.exit(1);
});
