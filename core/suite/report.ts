/**
 * `mergeflow suite report`: the baseline table of a suite in the papers' layout. Evaluates the pretrained
 * model, each individual fine-tuned model (on its own task), and the data-free merges (weight averaging,
 * Task Arithmetic λ = 0.3, TIES keep 20 % λ = 0.3) into <suite>/merged/<method>: in this process with
 * core/pipeline runLocalMerge, or by the caller's runner (the demo's goes through Temporal). Writes report.md,
 * report.json and report.png (+ report.svg).
 */
import { validateConfig } from '../config/load';
import { isDataFree, type MergeConfig } from '../config/schema';
import { evaluateModel, SuiteAccuracy, ensureBackend, TaskEvalSpec } from '../eval/evaluate';
import { runLocalMerge } from '../pipeline/local';
import { joinUri, normalizeUri, putObject } from '../store';
import { chartPng, chartSvg, ChartInput, svgToPng } from './chart';
import { validitySvg } from './validity_chart';
import { suiteMergeConfig } from './config';
import { openSuite, Suite } from './manifest';
import { suiteValidity, validityMarkdown, ValidityReport } from './validity';

export interface ReportRow {
  /** Row key: pretrained, individual, or the merge method name. */
  method: string;
  /** Row label in the table. */
  label: string;
  /** Accuracy per target task, 0..1. */
  tasks: Record<string, number>;
  average: number;
  /** Merged checkpoint folder, for merge rows. */
  checkpoint?: string;
  seconds: number;
}

export interface SuiteReport {
  suite: string;
  name: string;
  seed: number;
  size: string;
  tasks: string[];
  rows: ReportRow[];
  backend: string;
  createdAt: string;
  seconds: number;
  /** Whether the suite meets the premise of entropy-based merging (validity.ts); absent with `validity: false`. */
  validity?: ValidityReport;
}

export interface ReportMerge {
  method: string;
  label: string;
  parameters: Record<string, unknown>;
}

export const REPORT_MERGES: readonly ReportMerge[] = [
  { method: 'weight_average', label: 'Weight Averaging', parameters: {} },
  { method: 'task_arithmetic', label: 'Task Arithmetic', parameters: { scaling: 0.3 } },
  { method: 'ties', label: 'TIES-Merging', parameters: { scaling: 0.3, keep: 0.2 } },
];

export type ReportEvent =
  | { phase: 'evaluate'; row: string; done: number; total: number; note: string }
  | { phase: 'merge'; row: string; state: 'start' | 'done'; seconds?: number }
  | { phase: 'row'; row: ReportRow }
  | { phase: 'validity'; point: string; done: number; total: number };

/** Runs one merge config to its output (default: in this process with runLocalMerge). */
export type MergeRunner = (config: MergeConfig, method: string) => Promise<void>;

export interface ReportOptions {
  onEvent?: (e: ReportEvent) => void;
  /** Evaluate at most this many test rows per task. */
  limit?: number;
  /** How the merges run: the demo passes one that runs them through Temporal. */
  merge?: MergeRunner;
  /** Run the validity check (entropy vs error over a Task Arithmetic sweep; default true). */
  validity?: boolean;
  /** The merge rows, in order (default REPORT_MERGES; the demo adds layer-wise AdaMerging). */
  merges?: readonly ReportMerge[];
}

/** The AdaMerging row of the demo: layer-wise, `steps` Adam steps, the other parameters at their defaults. */
export function adaMergingRow(steps: number): ReportMerge {
  return { method: 'adamerging', label: 'AdaMerging (layer-wise)', parameters: { granularity: 'layer', steps } };
}

const localMerge: MergeRunner = async (config, method) => {
  if (!isDataFree(config))
    throw new Error(
      `the in-process report runs data-free merges only; run ${method} through Temporal (mergeflow demo)`,
    );
  await runLocalMerge(config, `report-${method}`);
};

function evalSpecs(suite: Suite, names: readonly string[]): TaskEvalSpec[] {
  return names.map((n) => {
    const t = suite.task(n);
    return { name: n, test: t.test, head: t.head };
  });
}

export async function suiteReport(suiteUri: string, opts: ReportOptions = {}): Promise<SuiteReport> {
  const started = Date.now();
  const suite = await openSuite(suiteUri);
  const backend = await ensureBackend();
  const emit = opts.onEvent ?? (() => undefined);
  const targets = suite.targets;
  const rows: ReportRow[] = [];
  const total = targets.length;
  const push = (row: ReportRow) => {
    rows.push(row);
    emit({ phase: 'row', row });
  };
  const evalRow = async (row: string, model: string, names: readonly string[]): Promise<SuiteAccuracy> => {
    let finished = 0;
    return evaluateModel(model, evalSpecs(suite, names), {
      limit: opts.limit,
      onBatch: (done, n, note) => {
        if (done === n) finished++;
        emit({ phase: 'evaluate', row, done: finished, total: names.length, note: `${note} ${done}/${n}` });
      },
    });
  };

  let t = Date.now();
  const pre = await evalRow('pretrained', suite.pretrained, targets);
  push({
    method: 'pretrained',
    label: 'Pretrained',
    tasks: pre.tasks,
    average: pre.average,
    seconds: (Date.now() - t) / 1000,
  });

  t = Date.now();
  const ind: Record<string, number> = {};
  for (const [i, name] of targets.entries()) {
    const r = await evaluateModel(suite.task(name).model, evalSpecs(suite, [name]), { limit: opts.limit });
    ind[name] = r.tasks[name];
    emit({ phase: 'evaluate', row: 'individual', done: i + 1, total, note: name });
  }
  const indAvg = targets.reduce((a, n) => a + ind[n], 0) / Math.max(1, total);
  push({ method: 'individual', label: 'Individual', tasks: ind, average: indAvg, seconds: (Date.now() - t) / 1000 });

  for (const m of opts.merges ?? REPORT_MERGES) {
    t = Date.now();
    emit({ phase: 'merge', row: m.method, state: 'start' });
    const doc = suiteMergeConfig(suite, { method: m.method, parameters: m.parameters });
    const cfg = validateConfig(doc, `suite report (${m.method})`);
    await (opts.merge ?? localMerge)(cfg, m.method);
    emit({ phase: 'merge', row: m.method, state: 'done', seconds: (Date.now() - t) / 1000 });
    const folder = cfg.output;
    const r = await evalRow(m.method, folder, targets);
    push({
      method: m.method,
      label: m.label,
      tasks: r.tasks,
      average: r.average,
      checkpoint: folder,
      seconds: (Date.now() - t) / 1000,
    });
  }

  const validity =
    opts.validity === false
      ? undefined
      : await suiteValidity(suite.uri, {
          limit: opts.limit,
          onPoint: (point, done, total) => emit({ phase: 'validity', point, done, total }),
        });

  return {
    suite: suite.uri,
    name: suite.manifest.name,
    seed: suite.manifest.seed,
    size: suite.manifest.size,
    tasks: [...targets],
    rows,
    backend,
    createdAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    ...(validity ? { validity } : {}),
  };
}

const pct = (v: number) => (v * 100).toFixed(1);

/** The table as Markdown: rows = methods, columns = the target tasks + Avg. (accuracy in %). */
export function reportMarkdown(r: SuiteReport): string {
  const head = ['Method', ...r.tasks, 'Avg.'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`];
  const section = (title: string) => lines.push(`| *${title}* | ${r.tasks.map(() => '').join(' | ')} |  |`);
  section('Non-merging methods');
  for (const row of r.rows) {
    if (row.method === REPORT_MERGES[0].method) section('Model merging methods');
    const cells = r.tasks.map((t) => pct(row.tasks[t]));
    lines.push(`| ${row.label} | ${cells.join(' | ')} | **${pct(row.average)}** |`);
  }
  return lines.join('\n') + '\n';
}

export function reportDocument(r: SuiteReport): string {
  return (
    `# ${r.name} baseline (seed ${r.seed}, ${r.size})\n\n` +
    `Test accuracy (%) of each method on the ${r.tasks.length} target tasks, each task with its own frozen head. ` +
    `Suite: ${r.suite}. Evaluated on the ${r.backend} backend in ${r.seconds} s.\n\n` +
    reportMarkdown(r) +
    `\nTask Arithmetic λ = 0.3; TIES keeps the top 20 % of each task vector, λ = 0.3.\n` +
    (r.validity ? validitySection(r.validity) : '')
  );
}

/** The validity check as a report section. */
export function validitySection(v: ValidityReport): string {
  return (
    `\n## Validity: does entropy track error? (${v.ok ? 'PASS' : 'FAIL'})\n\n` +
    `AdaMerging and FW-Soft minimise prediction entropy on unlabeled test inputs, assuming that a surer merge ` +
    `is a better one. Per target task: Spearman's ρ between mean entropy and error over ${v.lambdas.length} ` +
    `Task Arithmetic merges (λ = ${v.lambdas.join(', ')}) and the ${v.tasks.length} target models alone; ` +
    `accuracy (%) / mean entropy (nats). The last column (a diagnostic, not a goal) adds half of the task's own ` +
    `vector to Task Arithmetic λ 0.3: entropy minimisation can only raise λk if that makes task k surer (ΔH < 0). ` +
    `The last (also a diagnostic) raises λk alone by 0.1 and sums the entropy change of task k and of the other ` +
    `targets: task-wise AdaMerging's first step raises λk only if own + others < 0.\n\n` +
    validityMarkdown(v)
  );
}

export function reportChart(r: SuiteReport): ChartInput {
  return {
    title: `${r.name} suite: baseline merging (seed ${r.seed}, ${r.size})`,
    subtitle: `Test accuracy on the ${r.tasks.length} target tasks; each task keeps its own frozen head`,
    columns: r.tasks,
    rows: r.rows.map((row) => ({ label: row.label, values: r.tasks.map((t) => row.tasks[t]), average: row.average })),
  };
}

/** Write report.md, report.json, report.svg and report.png into `outDir` (a folder URI or path). */
export async function writeReport(r: SuiteReport, outDir: string): Promise<Record<string, string>> {
  const dir = normalizeUri(outDir).replace(/\/+$/, '');
  const files = {
    md: joinUri(dir, 'report.md'),
    json: joinUri(dir, 'report.json'),
    svg: joinUri(dir, 'report.svg'),
    png: joinUri(dir, 'report.png'),
  };
  await putObject(files.md, Buffer.from(reportDocument(r), 'utf8'));
  await putObject(files.json, Buffer.from(JSON.stringify(r, null, 2) + '\n', 'utf8'));
  const chart = reportChart(r);
  await putObject(files.svg, Buffer.from(chartSvg(chart), 'utf8'));
  await putObject(files.png, await chartPng(chart));
  if (r.validity) {
    const png = joinUri(dir, 'validity.png');
    const svg = validitySvg(r.validity, `${r.name} (seed ${r.seed}, ${r.size}): does entropy track error?`);
    await putObject(png, await svgToPng(svg));
    return { ...files, validityPng: png };
  }
  return files;
}
