/**
 * `npm run bench` (dist/bench/harness/run.js) on a folder of small bench modules written here: it lists them,
 * runs each, skips the unavailable one with its reason, reports the failing one and exits 1, writes
 * results.json with exactly the issue's fields and RESULTS.md with the machine, and a later run of one bench
 * replaces that bench's figures and keeps the others'. No figure here times anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mergeResults, BenchRun } from '../bench/harness/results';
import { figure } from '../bench/harness/types';
import { REPO, tmpDir } from './helpers/env';

const RUNNER = path.join(REPO, 'dist', 'bench', 'harness', 'run.js');
const TYPES = path.join(REPO, 'dist', 'bench', 'harness', 'types.js');

/** A bench module: figures from the environment, so that a second run can change them. */
function benchModule(name: string, body: string): string {
  return `const fs = require('node:fs');
const { figure } = require(${JSON.stringify(TYPES)});
exports.bench = { name: ${JSON.stringify(name)}, description: 'the ${name} fixture', ${body} };
`;
}

function writeBenches(dir: string): void {
  fs.writeFileSync(
    path.join(dir, 'alpha.js'),
    benchModule(
      'alpha',
      `async run(o) {
        const v = Number(process.env.ALPHA_VALUE);
        if (!fs.existsSync(o.dir)) throw new Error('no scratch folder');
        return [figure({ name: 'alpha.' + process.env.ALPHA_NAME + (o.quick ? '.quick' : ''), value: v, unit: 's',
          baseline: 'twice the time', baseline_value: 2 * v, goal: 'ratio <= 0.6', check: (_v, r) => r <= 0.6 })];
      }`,
    ),
  );
  fs.writeFileSync(
    path.join(dir, 'beta.js'),
    benchModule(
      'beta',
      `async run() {
        return [figure({ name: 'beta.size', value: 7, unit: 'MB', baseline: null, baseline_value: null, goal: 'value <= 5', check: (v) => v <= 5 })];
      }`,
    ),
  );
  fs.writeFileSync(
    path.join(dir, 'gamma.js'),
    benchModule(
      'gamma',
      `async unavailable() { return 'the gamma tool is not installed'; }, async run() { throw new Error('ran'); }`,
    ),
  );
  fs.writeFileSync(path.join(dir, 'delta.js'), benchModule('delta', `async run() { throw new Error('delta broke'); }`));
  fs.writeFileSync(path.join(dir, 'helper.js'), 'exports.notABench = 1;\n');
}

function bench(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [RUNNER, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test(
  'the bench runner lists, runs, skips, reports failures and merges results across runs',
  { timeout: 120_000 },
  () => {
    const figures = tmpDir('bench-figures');
    const out = tmpDir('bench-out');
    writeBenches(figures);
    const common = ['--figures', figures, '--out', out];

    const list = bench(['--list', ...common]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      ['alpha', 'beta', 'delta', 'gamma'],
    );
    assert.match(lines[3], /unavailable: the gamma tool is not installed/);

    const all = bench(common, { ALPHA_VALUE: '3', ALPHA_NAME: 'first' });
    assert.equal(all.code, 1, 'a failing bench makes the run exit 1');
    assert.match(all.stdout, /alpha\.first: 3 s {2}vs 6 s \(twice the time\), ratio 0\.5 {2}\[ratio <= 0\.6: met\]/);
    assert.match(all.stdout, /gamma[\s\S]*skipped: the gamma tool is not installed/);
    assert.match(all.stdout, /FAILED: Error: delta broke/);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.deepEqual(results, [
      {
        name: 'alpha.first',
        value: 3,
        unit: 's',
        baseline: 'twice the time',
        baseline_value: 6,
        ratio: 0.5,
        goal: 'ratio <= 0.6',
        met: true,
      },
      {
        name: 'beta.size',
        value: 7,
        unit: 'MB',
        baseline: null,
        baseline_value: null,
        ratio: null,
        goal: 'value <= 5',
        met: false,
      },
    ]);
    const md = fs.readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    assert.ok(md.includes(os.cpus()[0].model.trim()), 'RESULTS.md names the CPU');
    assert.ok(md.includes(`Node ${process.version}`), 'RESULTS.md names the Node version');
    assert.match(md, /Goals: 1 of 2 met/);
    assert.match(md, /not met: `beta\.size` is 7 MB/);
    assert.match(md, /## gamma[\s\S]*skipped: unavailable: the gamma tool is not installed/);
    assert.match(md, /command: `npm run bench -- --figures /);

    // a second run of alpha alone replaces alpha's figures (a renamed one too) and keeps beta's
    const one = bench(['alpha', '--quick', ...common], {
      ALPHA_VALUE: '5',
      ALPHA_NAME: 'second',
      MERGEFLOW_BENCH_EXAMPLE: 'x',
    });
    assert.equal(one.code, 0, one.stderr);
    const again = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {
      name: string;
      value: number;
    }[];
    assert.deepEqual(
      again.map((f) => [f.name, f.value]),
      [
        ['alpha.second.quick', 5],
        ['beta.size', 7],
      ],
    );
    const md2 = fs.readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
    assert.doesNotMatch(md2, /alpha\.first/);
    // settings the benches read from the environment are part of the recorded command
    assert.match(md2, /command: `MERGEFLOW_BENCH_EXAMPLE=x npm run bench -- alpha --quick --figures /);

    const unknown = bench(['nosuch', ...common]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no bench named 'nosuch'.*alpha, beta, delta, gamma/);
  },
);

test('a bench that is skipped or fails keeps the figures of its last good run', () => {
  const run = (bench: string, figures: string[], skipped?: string): BenchRun => ({
    bench,
    description: bench,
    date: '2026-01-01T00:00:00Z',
    command: 'npm run bench',
    machine: 'm',
    seconds: 1,
    figures,
    ...(skipped ? { skipped } : {}),
  });
  const f = (name: string, value: number) =>
    figure({ name, value, unit: 's', baseline: null, baseline_value: null, goal: null });
  const earlier = { runs: [run('a', ['a.x'])], figures: [f('a.x', 1)] };
  const merged = mergeResults(earlier, [{ run: run('a', [], 'failed: boom'), figures: [] }]);
  assert.deepEqual(merged.figures, [f('a.x', 1)]);
  assert.equal(merged.runs[0].skipped, 'failed: boom');
  assert.deepEqual(merged.runs[0].figures, ['a.x']);
});
