/**
 * The suite's validity check: does it meet the premise of entropy-based merging (AdaMerging, FW-Soft)?
 *
 * Those methods assume that on a task's unlabeled test inputs the mean prediction entropy tracks the error:
 * a merge that is surer is also more often right. For each target task this module measures, across a sweep
 * of merges (Task Arithmetic θ0 + λ Σk τk at λ = 0, 0.1, …, 1, and each target model alone), the mean entropy
 * and the error on that task's test split, and their Spearman rank correlation. The suite passes when
 *   - every target's correlation is at least `minCorrelation` (0.5),
 *   - no target scores below chance (1 / classes) with the pretrained model,
 *   - Task Arithmetic (λ = 0.3) is at least `minTaGain` (8) points above the pretrained model on average.
 * The merges are built in memory (θ0 + Σ c τ over float32 arrays); nothing is written.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Checkpoint } from '../safetensors';
import { openDataset } from '../data/dataset';
import { clipVisionForward, ClipVisionConfig, clipVisionParamShapes, Params } from '../models/clip_vit';
import { readClipVisionConfig } from '../models/clip_vit_load';
import { ClassificationHead, disposeHead, headClasses, headLogits, loadHead } from '../models/head';
import { ensureBackend } from '../eval/evaluate';
import { joinUri } from '../store';
import { openSuite, Suite } from './manifest';

export const VALIDITY_LAMBDAS: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/**
 * Diagnostic (not a goal): from Task Arithmetic at λ = 0.3, add μ more of task k's own vector. AdaMerging can only
 * raise λk if that lowers task k's entropy; where the entropy stays flat while the accuracy rises, entropy
 * minimisation gets no signal for λk.
 */
export const OWN_STEPS: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
export const OWN_FROM = 0.3;
/**
 * Diagnostic: the change of every target's entropy when task k's coefficient alone rises by CROSS_STEP from
 * Task Arithmetic λ 0.3 — a finite-difference view of task-wise AdaMerging's first gradient. AdaMerging raises
 * λk when the sum over all targets falls, so a vector that lowers its own task's entropy can still be pushed
 * down by what it does to the others.
 */
export const CROSS_STEP = 0.1;

export interface ValidityGoals {
  minCorrelation: number;
  minTaGain: number;
}
export const VALIDITY_GOALS: ValidityGoals = { minCorrelation: 0.5, minTaGain: 0.08 };

export interface SweepMeasure {
  /** `ta@0.3`, or the name of the model alone. */
  point: string;
  accuracy: number;
  /** Mean Shannon entropy (nats) of the softmax over the task's classes. */
  entropy: number;
}

export interface TaskValidity {
  task: string;
  classes: number;
  chance: number;
  pretrained: SweepMeasure;
  individual: SweepMeasure;
  points: SweepMeasure[];
  /** Spearman correlation of mean entropy and error (1 − accuracy) over the points. */
  correlation: number;
  /** Along its own vector from TA (OWN_STEPS): θ0 + 0.3 Σj τj + μ τk, measured on this task (`own+μ`). */
  own: SweepMeasure[];
  /** Entropy and accuracy change from μ = 0 to the last μ (negative entropy change: the own vector makes it surer). */
  ownDelta: { entropy: number; accuracy: number };
  /** Entropy change of this task's own entropy (`own`) and of the other targets' summed (`others`) for +CROSS_STEP of τk. */
  cross: { own: number; others: number };
}

export interface ValidityCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ValidityReport {
  suite: string;
  lambdas: number[];
  limit: number;
  tasks: TaskValidity[];
  /** Average accuracy of the pretrained model, Task Arithmetic λ = 0.3 and the individual models. */
  averages: { pretrained: number; taskArithmetic: number; individual: number };
  checks: ValidityCheck[];
  /** cross[j][k]: change of target j's mean entropy when λk alone rises by CROSS_STEP from Task Arithmetic λ 0.3. */
  crossEntropy: number[][];
  ok: boolean;
  seconds: number;
}

export interface ValidityOptions {
  /** Test rows per task (default 1000: all of the full suite's). */
  limit?: number;
  lambdas?: readonly number[];
  goals?: Partial<ValidityGoals>;
  onPoint?: (point: string, done: number, total: number) => void;
}

/** Ranks with ties averaged (1-based). */
export function ranks(values: readonly number[]): number[] {
  const idx = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[idx[k][1]] = r;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson on tie-averaged ranks); 0 when either side is constant. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`spearman: ${a.length} values against ${b.length}`);
  const ra = ranks(a);
  const rb = ranks(b);
  const n = a.length;
  const ma = ra.reduce((s, v) => s + v, 0) / n;
  const mb = rb.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) ** 2;
    sbb += (rb[i] - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? 0 : sab / Math.sqrt(saa * sbb);
}

/** A model's parameters as plain arrays, by tensor name. */
export type Values = Record<string, Float32Array>;

/** The parameters of a model folder (its model.safetensors). */
export async function readValues(folder: string, c: ClipVisionConfig): Promise<Values> {
  const ck = await Checkpoint.open(joinUri(folder, 'model.safetensors'));
  const out: Values = {};
  for (const { name } of clipVisionParamShapes(c)) out[name] = await ck.readFloat32(name);
  return out;
}

/** θ0 + Σ coef[k] (θk − θ0), as tf tensors (the caller disposes them); no models: θ0 itself. */
export function combine(c: ClipVisionConfig, base: Values, models: readonly Values[], coef: readonly number[]): Params {
  const out: Params = {};
  for (const { name, shape } of clipVisionParamShapes(c)) {
    const b = base[name];
    const v = new Float32Array(b.length);
    for (let i = 0; i < b.length; i++) {
      let s = 0;
      for (let k = 0; k < models.length; k++) if (coef[k] !== 0) s += coef[k] * (models[k][name][i] - b[i]);
      v[i] = b[i] + s;
    }
    out[name] = tf.tensor(v, shape, 'float32');
  }
  return out;
}

export interface TaskData {
  name: string;
  head: ClassificationHead;
  batches: { x: tf.Tensor4D; labels: Int32Array }[];
}

/** A task's head and the first `limit` images of its test split, as tensors (dispose them with the head). */
export async function loadTaskData(suite: Suite, name: string, limit: number): Promise<TaskData> {
  const t = suite.task(name);
  const head = await loadHead(t.head);
  const batches: TaskData['batches'] = [];
  for await (const b of (await openDataset(t.test)).batches({ batchSize: 250, limit }))
    batches.push({ x: tf.tensor4d(b.inputs, b.shape), labels: Int32Array.from(b.labels!) });
  return { name, head, batches };
}

/** Accuracy and mean entropy of one model on one task's preloaded batches. */
export function measure(params: Params, c: ClipVisionConfig, t: TaskData): { accuracy: number; entropy: number } {
  let correct = 0;
  let n = 0;
  let hsum = 0;
  for (const b of t.batches) {
    const [pred, ent] = tf.tidy(() => {
      const logits = headLogits(t.head, clipVisionForward(params, c, b.x));
      const logp = tf.logSoftmax(logits);
      const h = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
      return [tf.argMax(logits, 1), h];
    });
    const p = pred.dataSync();
    const h = ent.dataSync();
    pred.dispose();
    ent.dispose();
    for (let i = 0; i < p.length; i++) {
      if (p[i] === b.labels[i]) correct++;
      hsum += h[i];
    }
    n += p.length;
  }
  return { accuracy: n ? correct / n : 0, entropy: n ? hsum / n : 0 };
}

/** Run the validity check on a suite (any store URI). */
export async function suiteValidity(suiteUri: string, opts: ValidityOptions = {}): Promise<ValidityReport> {
  const started = Date.now();
  await ensureBackend();
  const suite = await openSuite(suiteUri);
  const goals = { ...VALIDITY_GOALS, ...(opts.goals ?? {}) };
  // λ = 0 (the pretrained model) is always a point, and always the first
  // (and λ = OWN_FROM, where the diagnostics start)
  const lambdas = [
    0,
    ...[...new Set([...(opts.lambdas ?? VALIDITY_LAMBDAS), OWN_FROM])].filter((l) => l !== 0).sort((a, b) => a - b),
  ];
  const limit = opts.limit ?? 1000;
  const c = await readClipVisionConfig(suite.pretrained);
  const base = await readValues(suite.pretrained, c);
  const targets = suite.targets;
  const models: Values[] = [];
  for (const name of targets) models.push(await readValues(suite.task(name).model, c));

  const data: TaskData[] = [];
  try {
    for (const name of targets) {
      data.push(await loadTaskData(suite, name, limit));
    }
    const points: { point: string; coef: number[] }[] = [
      ...lambdas.map((l) => ({ point: `ta@${l}`, coef: targets.map(() => l) })),
      ...targets.map((name, k) => ({ point: name, coef: targets.map((_, j) => (j === k ? 1 : 0)) })),
    ];
    const table = new Map<string, Map<string, { accuracy: number; entropy: number }>>();
    for (const [i, p] of points.entries()) {
      const params = combine(c, base, models, p.coef);
      try {
        const row = new Map<string, { accuracy: number; entropy: number }>();
        for (const t of data) row.set(t.name, measure(params, c, t));
        table.set(p.point, row);
      } finally {
        for (const v of Object.values(params)) v.dispose();
      }
      opts.onPoint?.(p.point, i + 1, points.length);
    }
    const own = new Map<string, SweepMeasure[]>();
    for (const [k, t] of data.entries()) {
      const row: SweepMeasure[] = [];
      for (const mu of OWN_STEPS) {
        const params = combine(
          c,
          base,
          models,
          targets.map((_, j) => OWN_FROM + (j === k ? mu : 0)),
        );
        try {
          row.push({ point: `own+${mu}`, ...measure(params, c, t) });
        } finally {
          for (const v of Object.values(params)) v.dispose();
        }
      }
      own.set(t.name, row);
      opts.onPoint?.(`own direction ${t.name}`, points.length + k + 1, points.length + data.length);
    }
    const from = table.get(`ta@${OWN_FROM}`)!;
    const crossEntropy: number[][] = targets.map(() => targets.map(() => 0));
    for (const k of targets.keys()) {
      const params = combine(
        c,
        base,
        models,
        targets.map((_, j) => OWN_FROM + (j === k ? CROSS_STEP : 0)),
      );
      try {
        for (const [j, t] of data.entries()) {
          crossEntropy[j][k] = measure(params, c, t).entropy - from.get(t.name)!.entropy;
        }
      } finally {
        for (const v of Object.values(params)) v.dispose();
      }
    }
    const tasks: TaskValidity[] = data.map((t, k) => {
      const classes = headClasses(t.head);
      const pts = points.map((p) => ({ point: p.point, ...table.get(p.point)!.get(t.name)! }));
      const o = own.get(t.name)!;
      return {
        task: t.name,
        classes,
        chance: 1 / classes,
        pretrained: pts[0],
        individual: pts.find((p) => p.point === t.name)!,
        points: pts,
        correlation: spearman(
          pts.map((p) => p.entropy),
          pts.map((p) => 1 - p.accuracy),
        ),
        own: o,
        ownDelta: {
          entropy: o[o.length - 1].entropy - o[0].entropy,
          accuracy: o[o.length - 1].accuracy - o[0].accuracy,
        },
        cross: {
          own: crossEntropy[k][k],
          others: crossEntropy.reduce((sum, row, j) => (j === k ? sum : sum + row[k]), 0),
        },
      };
    });
    const avg = (f: (t: TaskValidity) => number) => tasks.reduce((s, t) => s + f(t), 0) / Math.max(1, tasks.length);
    const ta = (t: TaskValidity) => table.get('ta@0.3')?.get(t.task)?.accuracy ?? NaN;
    const averages = {
      pretrained: avg((t) => t.pretrained.accuracy),
      taskArithmetic: avg(ta),
      individual: avg((t) => t.individual.accuracy),
    };
    const pct = (v: number) => (v * 100).toFixed(1);
    const weak = tasks.filter((t) => !(t.correlation >= goals.minCorrelation));
    const below = tasks.filter((t) => t.pretrained.accuracy < t.chance);
    const gain = averages.taskArithmetic - averages.pretrained;
    const checks: ValidityCheck[] = [
      {
        name: 'entropy tracks error',
        ok: weak.length === 0,
        detail: weak.length
          ? `correlation below ${goals.minCorrelation} on ${weak.map((t) => `${t.task} (${t.correlation.toFixed(2)})`).join(', ')}`
          : `every target ≥ ${goals.minCorrelation} (lowest ${Math.min(...tasks.map((t) => t.correlation)).toFixed(2)})`,
      },
      {
        name: 'pretrained above chance',
        ok: below.length === 0,
        detail: below.length
          ? `below chance: ${below.map((t) => `${t.task} ${pct(t.pretrained.accuracy)} % < ${pct(t.chance)} %`).join(', ')}`
          : 'every target above chance',
      },
      {
        name: 'Task Arithmetic lifts the pretrained model',
        ok: gain >= goals.minTaGain,
        detail: `Task Arithmetic (λ 0.3) ${pct(averages.taskArithmetic)} vs pretrained ${pct(averages.pretrained)}: ${gain >= 0 ? '+' : ''}${pct(gain)} points (goal +${pct(goals.minTaGain)})`,
      },
    ];
    return {
      suite: suite.uri,
      lambdas,
      limit,
      tasks,
      averages,
      checks,
      crossEntropy,
      ok: checks.every((k) => k.ok),
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    for (const t of data) {
      disposeHead(t.head);
      for (const b of t.batches) b.x.dispose();
    }
  }
}

/** The check as Markdown: per task, correlation, pretrained / TA / individual accuracy and entropy. */
export function validityMarkdown(r: ValidityReport): string {
  const pct = (v: number) => (v * 100).toFixed(1);
  const sign = (v: string) => (v.startsWith('-') ? v : `+${v}`);
  const lines = [
    '| Task | ρ(entropy, error) | chance | pretrained acc / H | TA 0.3 acc / H | individual acc / H | own τ +0.5: Δacc / ΔH | λk +0.1: ΔH own / others |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const t of r.tasks) {
    const ta = t.points.find((p) => p.point === 'ta@0.3');
    const cell = (m?: SweepMeasure) => (m ? `${pct(m.accuracy)} / ${m.entropy.toFixed(3)}` : '–');
    lines.push(
      `| ${t.task} | ${t.correlation.toFixed(2)} | ${pct(t.chance)} | ${cell(t.pretrained)} | ${cell(ta)} | ${cell(t.individual)} | ` +
        `${sign(pct(t.ownDelta.accuracy))} / ${sign(t.ownDelta.entropy.toFixed(3))} | ` +
        `${sign(t.cross.own.toFixed(3))} / ${sign(t.cross.others.toFixed(3))} |`,
    );
  }
  lines.push('');
  for (const k of r.checks) lines.push(`- ${k.ok ? 'PASS' : 'FAIL'} ${k.name}: ${k.detail}`);
  return lines.join('\n') + '\n';
}
