/**
 * Irrelevant models in the pool (issue 9, results item 2): the suite's 8 target models plus N irrelevant ones,
 * merged by Task Arithmetic, TIES, layer-wise AdaMerging and Frank-Wolfe (the suite's default variant), each
 * evaluated on the 8 targets. In this process (no Temporal), with the same core code the workflows run.
 * Writes sweep.json, sweep.md and sweep.png to --out; a cell already in sweep.json is not run again.
 *
 *   node dist/bench/pool_sweep.js SUITE [--irrelevant 0,4,8,16] [--methods ta,ties,adamerging,fw]
 *        [--ada-steps 200] [--fw KEY=VALUE,...] [--limit 1000] [--out DIR]
 *
 * --fw overrides Frank-Wolfe's parameters (e.g. --fw adamerging_steps=100,iterations=5 or --fw
 * step_objective=proxy); fw-proxy is the suite default with step_objective=proxy. AdaMerging learns
 * layer-wise λ for all 8 + N models from the targets' entropy (the irrelevant models have no inputs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { ensureBackend, evaluateModel, TaskEvalSpec } from '../core/eval/evaluate';
import { adamOptimizer, runAdaMergingLocal } from '../core/merge/adamerging/local_run';
import { runFrankWolfeLocal } from '../core/merge/frank_wolfe/local_run';
import { runLocalMerge } from '../core/pipeline/local';
import { adaMergingTasks, defaultParameters, suiteMergeConfig } from '../core/suite/config';
import { writeModel } from '../core/suite/io';
import { openSuite, Suite } from '../core/suite/manifest';
import { sweepPng } from './sweep/chart';
import { writeLambdaModel } from './sweep/lambda_model';
import { opt } from './harness/args';

const LABELS: Record<string, string> = {
  ta: 'Task Arithmetic',
  ties: 'TIES',
  adamerging: 'AdaMerging (layer-wise)',
  fw: 'FW-Soft, oracle on τ (default)',
  'fw-weights': 'FW-Soft, oracle on θ (spec)',
  'fw-layer': 'FW-Soft, layer-wise, on τ',
  'fw-proxy': 'FW-Soft, τ, proxy step sizes',
  'fw-hard': 'FW-Hard, TA start and step',
  'fw-hard-ties': 'FW-Hard, TIES start and step',
};

/** Frank-Wolfe variants besides the suite default: their parameter overrides. */
const FW_VARIANTS: Record<string, Record<string, unknown>> = {
  fw: {},
  'fw-weights': { oracle_basis: 'weights' },
  'fw-layer': { oracle: 'layer' },
  'fw-proxy': { step_objective: 'proxy' },
  'fw-hard': { variant: 'hard', start: 'ta', local_merge: 'ta', iterations: 10 },
  'fw-hard-ties': { variant: 'hard', start: 'ties', local_merge: 'ties', iterations: 10 },
};

interface Cell {
  method: string;
  irrelevant: number;
  average: number;
  tasks: Record<string, number>;
  seconds: number;
  note?: string;
}

function parseSets(s: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of s.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    out[k] = Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}

async function runCell(suite: Suite, method: string, n: number, dir: string, fwSets: Record<string, unknown>) {
  const irrelevant = suite.irrelevant.slice(0, n);
  if (method === 'ta' || method === 'ties') {
    const doc = suiteMergeConfig(suite, {
      method: method === 'ta' ? 'task_arithmetic' : 'ties',
      irrelevant: n,
      output: dir,
    });
    await runLocalMerge(validateConfig(doc, 'pool_sweep'), `sweep-${method}-${n}`);
    return '';
  }
  if (method === 'adamerging') {
    const steps = Number(opt('ada-steps', '200'));
    const r = await runAdaMergingLocal({
      pretrained: suite.pretrained,
      tasks: adaMergingTasks(suite),
      extraModels: irrelevant.map((t) => ({ name: t, model: suite.task(t).model })),
      granularity: 'layer',
      steps,
      seed: 0,
      optimizer: adamOptimizer(),
    });
    const models = [...suite.targets, ...irrelevant].map((t) => suite.task(t).model);
    await writeLambdaModel(suite.pretrained, models, r.layout, r.lambda, dir);
    const extra = r.summary.filter((s) => irrelevant.includes(s.task));
    return `${steps} steps; mean λ of the irrelevant models ${extra.length ? (extra.reduce((a, s) => a + s.mean, 0) / extra.length).toFixed(3) : '–'}`;
  }
  if (FW_VARIANTS[method]) {
    const params = { ...defaultParameters('frank_wolfe'), ...FW_VARIANTS[method], ...fwSets };
    const r = await runFrankWolfeLocal({
      pretrained: suite.pretrained,
      pool: [...suite.targets, ...irrelevant].map((t) => ({ name: t, model: suite.task(t).model })),
      targets: suite.targets.map((t) => ({
        name: t,
        head: suite.task(t).head,
        proxy: suite.task(t).train,
        data: suite.task(t).test,
      })),
      params,
      workDir: path.join(dir, 'work'),
      onIteration: (i) => {
        process.stderr.write(`  fw iteration ${i.iteration}: ${i.picks.join(' ')} (${i.seconds.toFixed(0)} s)\n`);
      },
    });
    await writeModel(dir, r.config, r.theta);
    // picks read 'target:model' (FW-Soft task-wise), 'target:[model×n …]' (layer-wise) or 'model×n' (FW-Hard)
    const names = (pick: string) =>
      pick
        .replace(/^[^:[]*:/, '')
        .replace(/[[\]]/g, '')
        .split(' ')
        .map((x) => x.replace(/×\d+$/, ''));
    const picked = new Set(r.iterations.flatMap((i) => i.picks.flatMap(names)));
    const wrong = [...picked].filter((p) => irrelevant.includes(p));
    const soft = params.variant === 'soft' ? ` × ${params.adamerging_steps} steps on ${params.step_objective}` : '';
    return `${params.variant}, ${params.oracle} oracle, start ${params.start}, ${params.iterations} iterations${soft}; irrelevant picks: ${wrong.length ? wrong.join(' ') : 'none'}`;
  }
  throw new Error(`unknown method '${method}'; use ta, ties, adamerging, ${Object.keys(FW_VARIANTS).join(', ')}`);
}

async function main(): Promise<void> {
  const suiteUri = process.argv[2];
  if (!suiteUri || suiteUri.startsWith('--')) throw new Error('usage: pool_sweep SUITE [options]');
  const suite = await openSuite(suiteUri);
  process.stderr.write(`backend: ${await ensureBackend('tensorflow')}\n`);
  const xs = opt('irrelevant', '0,4,8,16').split(',').map(Number);
  const methods = opt('methods', 'ta,ties,adamerging,fw').split(',');
  const limit = Number(opt('limit', '1000'));
  const fwSets = parseSets(opt('fw', ''));
  const out = path.resolve(opt('out', 'pool-sweep'));
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, 'sweep.json');
  const saved = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { cells: [] };
  const cells: Cell[] = saved.cells;
  const specs: TaskEvalSpec[] = suite.targets.map((t) => ({
    name: t,
    test: suite.task(t).test,
    head: suite.task(t).head,
  }));
  saved.pretrained ??= (await evaluateModel(suite.pretrained, specs, { limit })).average;
  const save = () => fs.writeFileSync(file, JSON.stringify({ ...saved, cells }, null, 1));
  for (const n of xs)
    for (const method of methods) {
      if (cells.some((c) => c.method === method && c.irrelevant === n)) continue;
      const dir = path.join(out, `${method}-irrelevant${n}`);
      const t0 = Date.now();
      process.stderr.write(`${method} with ${n} irrelevant models…\n`);
      const note = await runCell(suite, method, n, dir, fwSets);
      const seconds = (Date.now() - t0) / 1000;
      const e = await evaluateModel(dir, specs, { limit });
      cells.push({ method, irrelevant: n, average: e.average, tasks: e.tasks, seconds, note });
      save();
      process.stderr.write(`  ${method} +${n}: ${(e.average * 100).toFixed(1)} (${seconds.toFixed(0)} s) ${note}\n`);
    }
  const pct = (v: number) => (Number.isFinite(v) ? (v * 100).toFixed(1) : '–');
  const at = (m: string, n: number) => cells.find((c) => c.method === m && c.irrelevant === n)?.average ?? NaN;
  const used = [...new Set(cells.map((c) => c.method))];
  const ns = [...new Set(cells.map((c) => c.irrelevant))].sort((a, b) => a - b);
  const md = [
    `Average accuracy (%) on the 8 targets of ${suite.manifest.name} (seed ${suite.manifest.seed}, ${suite.manifest.size}); pretrained ${pct(saved.pretrained)}.`,
    '',
    `| method | ${ns.map((n) => `+${n} irrelevant`).join(' | ')} |`,
    `| --- | ${ns.map(() => '--:').join(' | ')} |`,
    ...used.map((m) => `| ${LABELS[m] ?? m} | ${ns.map((n) => pct(at(m, n))).join(' | ')} |`),
    '',
    ...cells
      .filter((c) => c.note)
      .map((c) => `- ${LABELS[c.method] ?? c.method} +${c.irrelevant}: ${c.note}; ${c.seconds.toFixed(0)} s`),
  ].join('\n');
  fs.writeFileSync(path.join(out, 'sweep.md'), md + '\n');
  fs.writeFileSync(
    path.join(out, 'sweep.png'),
    await sweepPng({
      title: 'Irrelevant models in the pool',
      subtitle: `${suite.manifest.name} seed ${suite.manifest.seed}: average accuracy on the 8 target tasks`,
      xs: ns,
      // methods run at one pool size only (the variants' table rows) are left out of the lines
      series: used
        .map((m) => ({ label: LABELS[m] ?? m, values: ns.map((n) => at(m, n)) }))
        .filter((x) => x.values.filter(Number.isFinite).length > 1),
      pretrained: saved.pretrained,
    }),
  );
  process.stdout.write(md + '\n');
}

main().catch((e) => {
  process.stderr.write(`pool_sweep: ${(e as Error).stack}\n`);
  process.exit(1);
});
