/**
 * FW-Hard and FW-Soft in this process over a small pool: the reference executor for tests and small runs.
 * θt is held in memory (float32 per merged tensor); each iteration computes g at θt, streams the pool through
 * the oracle tensor by tensor (oracle.ts), reads only the selected model(s), and updates θt.
 *
 * The TA / TIES start is the data-free merge run by the pipeline in process (core/pipeline/local.ts), written
 * under `workDir`; FW-Hard adds the start to the pool as the candidate 'start'.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkImageSize, Dataset, openDataset } from '../../data/dataset';
import { ClipVisionConfig, clipVisionParamShapes, Params } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { ClassificationHead, disposeHead, headDim, loadHead } from '../../models/head';
import { ModelError } from '../../models/errors';
import { Checkpoint } from '../../safetensors';
import { joinUri, normalizeUri } from '../../store';
import { mergeConfigSchema } from '../../config/schema';
import { runLocalMerge } from '../../pipeline/local';
import { BatchRowCursor } from '../adamerging/batches';
import { hardCoefficient, hardUpdate } from './fw_hard';
import { learnSoftStepSizes, softInit, softLayout, SoftPick, softSelect, softTaskVectors, softUpdate } from './fw_soft';
import { ObjectiveBatch, objectiveGradient, ObjectiveTarget } from './objective';
import { checkpointSource, memorySource, scoreCandidates, TensorSource } from './oracle';
import { selectLayerWise, selectTaskWise } from './oracle_scores';
import { FrankWolfeParams, frankWolfeParams, resolveStart } from './params';

export interface FwPoolEntry {
  name: string;
  /** A checkpoint: Hugging Face folder or .safetensors (file://, s3://, a path). */
  model: string;
}

export interface FwTargetInput {
  name: string;
  /** The target's frozen head. */
  head: string;
  /** Labeled train rows: the cross-entropy proxy set. */
  proxy?: string;
  /** Unlabeled test rows: the entropy objective, and FW-Soft's step sizes. */
  data?: string;
}

export interface FwLocalOptions {
  /** Pretrained model folder (θ0 of the task vectors; the config of every model). */
  pretrained: string;
  pool: readonly FwPoolEntry[];
  targets: readonly FwTargetInput[];
  /** The method's parameters (defaults filled by the schema). */
  params: Partial<FrankWolfeParams>;
  /** A folder for the TA / TIES start (file://, s3:// or a path). */
  workDir: string;
  /** Rows per forward pass of the objective (the sum does not depend on it; default 16). */
  rowsPerForward?: number;
  onIteration?: (info: FwIterationInfo) => void | Promise<void>;
}

export interface FwIterationInfo {
  iteration: number;
  /** f at θt (before the update), per target. */
  lossPerTarget: number[];
  /** Hard: the candidate chosen (task-wise) or the count per candidate (layer-wise); soft: one entry per pick. */
  picks: string[];
  /** Hard: a = γt · scaling; soft: NaN. */
  a: number;
  /** Soft: the AdaMerging losses of this iteration. */
  softLosses?: number[];
  seconds: number;
}

export interface FwLocalResult {
  config: ClipVisionConfig;
  tensors: string[];
  /** The final θ per merged tensor. */
  theta: Record<string, Float32Array>;
  iterations: FwIterationInfo[];
}

/** Rows of target `name` read at FW iteration t: positions [t·N, (t+1)·N) of its seeded row stream. */
export function proxyRows(seed: number, name: string, rows: number, samples: number, iteration: number): Int32Array {
  return new BatchRowCursor({ seed, rows, batchSize: samples, batchesPerTask: 1 }, `fw-proxy:${name}`).batches(
    iteration,
  )[0];
}

/** Unlabeled rows of target `name` for FW-Soft's Adam step `step` (counted over all iterations). */
export function softRows(seed: number, name: string, rows: number, batch: number, step: number): Int32Array {
  return new BatchRowCursor({ seed, rows, batchSize: batch, batchesPerTask: 1 }, `fw-soft:${name}`).batches(step)[0];
}

/** The step sizes' settings of FW-Soft's parameters. */
export type SoftStepParams = Pick<
  FrankWolfeParams,
  'seed' | 'step_objective' | 'proxy_samples' | 'adamerging_batch_size' | 'adamerging_steps'
>;

/**
 * FW-Soft's rows for each Adam step of iteration t, by `step_objective`. entropy: rows of the unlabeled test
 * split (softRows, steps counted over all iterations). proxy: rows of iteration t's labeled proxy set (the
 * proxyRows the oracle's gradient reads), B at a time in a seeded order of that set. Either way a pure
 * function of (run seed, target, iteration, step); `rows` is the row count of the split the objective reads.
 */
export function softStepRows(p: SoftStepParams, name: string, rows: number, t: number): (step: number) => Int32Array {
  const B = p.adamerging_batch_size;
  const first = t * p.adamerging_steps;
  if (p.step_objective === 'entropy') return (step) => softRows(p.seed, name, rows, B, first + step);
  const set = proxyRows(p.seed, name, rows, p.proxy_samples, t);
  const cursor = new BatchRowCursor(
    { seed: p.seed, rows: set.length, batchSize: B, batchesPerTask: 1 },
    `fw-soft-proxy:${name}`,
  );
  return (step) => cursor.batches(first + step)[0].map((i) => set[i]);
}

/** The split FW-Soft's step sizes read: the labeled proxy set (step_objective proxy) or the unlabeled test inputs. */
export function softStepData(
  p: Pick<FrankWolfeParams, 'step_objective'>,
  target: { proxy?: string; data?: string },
): { uri: string | undefined; what: string; labeled: boolean } {
  return p.step_objective === 'proxy'
    ? { uri: target.proxy, what: 'proxy (labeled)', labeled: true }
    : { uri: target.data, what: 'unlabeled', labeled: false };
}

/** Rows of a dataset as objective batches of at most `per` rows (labels kept when asked). */
export async function readBatches(
  ds: Dataset,
  rows: Int32Array,
  per: number,
  labels: boolean,
): Promise<ObjectiveBatch[]> {
  const out: ObjectiveBatch[] = [];
  for (let i = 0; i < rows.length; i += per) {
    const b = await ds.readRows(rows.subarray(i, Math.min(rows.length, i + per)));
    if (labels && !b.labels) throw new Error(`${ds.uri}: the cross-entropy proxy set needs labels`);
    out.push({ inputs: b.inputs, shape: b.shape, labels: labels ? b.labels : undefined });
  }
  return out;
}

async function readModel(uri: string, tensors: readonly string[]): Promise<Record<string, Float32Array>> {
  const ck = await Checkpoint.open(normalizeUri(uri));
  const out: Record<string, Float32Array> = {};
  for (const n of tensors) out[n] = await ck.readFloat32(n);
  return out;
}

async function startValues(o: FwLocalOptions, p: FrankWolfeParams, tensors: readonly string[]) {
  const start = resolveStart(p);
  if (start === 'pretrained') return readModel(o.pretrained, tensors);
  if (start !== 'ta' && start !== 'ties') return readModel(start, tensors);
  const output = joinUri(normalizeUri(o.workDir), 'start');
  const config = mergeConfigSchema.parse({
    method: start === 'ta' ? 'task_arithmetic' : 'ties',
    base: o.pretrained,
    models: o.pool.map((m) => ({ name: m.name, checkpoint: m.model })),
    output,
    shards: 1,
    parameters: start === 'ta' ? { scaling: p.scaling } : { scaling: p.scaling, keep: p.keep },
  });
  await runLocalMerge(config, 'fw-start');
  return readModel(output, tensors);
}

/** θ as tf tensors of the encoder's parameters (the caller disposes them). */
export function toParams(config: ClipVisionConfig, values: Readonly<Record<string, Float32Array>>): Params {
  const out: Params = {};
  for (const { name, shape } of clipVisionParamShapes(config)) out[name] = tf.tensor(values[name], shape);
  return out;
}

/** The selected model's tensors: one candidate (task-wise) or a composite (layer-wise; θt where -1). */
async function readTarget(
  sources: readonly TensorSource[],
  choice: readonly number[],
  tensors: readonly string[],
): Promise<Record<string, Float32Array | undefined>> {
  const out: Record<string, Float32Array | undefined> = {};
  for (let p = 0; p < tensors.length; p++)
    out[tensors[p]] = choice[p] < 0 ? undefined : await sources[choice[p]].read(tensors[p]);
  return out;
}

function choiceOf(pick: SoftPick, P: number): number[] {
  return pick.kind === 'task' ? Array<number>(P).fill(pick.selection.index) : pick.selection.choice;
}

function countPicks(names: readonly (string | null)[]): string[] {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n ?? '(θt)', (counts.get(n ?? '(θt)') ?? 0) + 1);
  return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, c]) => `${n}×${c}`);
}

export async function runFrankWolfeLocal(o: FwLocalOptions): Promise<FwLocalResult> {
  const p = frankWolfeParams.parse(o.params);
  const per = o.rowsPerForward ?? 16;
  if (o.pool.length === 0) throw new Error('FW: the pool is empty');
  if (o.targets.length === 0) throw new Error('FW: no target task');
  const config = await readClipVisionConfig(normalizeUri(o.pretrained));
  const tensors = clipVisionParamShapes(config).map((s) => s.name);
  const P = tensors.length;

  const heads: ClassificationHead[] = [];
  try {
    for (const t of o.targets) {
      const h = await loadHead(t.head);
      heads.push(h);
      if (headDim(h) !== config.projectionDim)
        throw new ModelError(
          `${h.source}: head is for ${headDim(h)}-dim embeddings, the model projects to ${config.projectionDim}`,
        );
    }
    const open = async (uri: string | undefined, what: string, name: string) => {
      if (!uri) throw new Error(`FW: target '${name}' has no ${what} dataset`);
      const ds = await openDataset(uri, { cacheBytes: 64 * 1024 * 1024 });
      checkImageSize(ds, [config.numChannels, config.imageSize, config.imageSize]);
      return ds;
    };
    const labeled = p.objective === 'cross_entropy';
    const objectiveData = await Promise.all(
      o.targets.map((t) => open(labeled ? t.proxy : t.data, labeled ? 'proxy (labeled)' : 'unlabeled', t.name)),
    );
    const soft = (t: FwTargetInput) => softStepData(p, t);
    const softData =
      p.variant === 'soft' ? await Promise.all(o.targets.map((t) => open(soft(t).uri, soft(t).what, t.name))) : [];

    let theta = await startValues(o, p, tensors);
    const sources: TensorSource[] = o.pool.map((m) => checkpointSource(m.name, m.model));
    const basis = p.oracle_basis === 'task_vectors' ? checkpointSource('base', o.pretrained) : undefined;
    if (p.variant === 'hard') {
      if (o.pool.some((m) => m.name === 'start'))
        throw new Error("FW: 'start' names the start candidate; rename that model");
      sources.push(memorySource('start', { ...theta }));
    }

    const objectiveTargets = async (t: number): Promise<ObjectiveTarget[]> =>
      Promise.all(
        o.targets.map(async (target, j) => ({
          name: target.name,
          head: heads[j],
          batches: await readBatches(
            objectiveData[j],
            proxyRows(p.seed, target.name, objectiveData[j].n, p.proxy_samples, t),
            per,
            labeled,
          ),
        })),
      );
    const gradientAt = (values: Record<string, Float32Array>, targets: ObjectiveTarget[], scaleTasks: number) => {
      const params = toParams(config, values);
      try {
        return objectiveGradient(config, params, tensors, targets, { kind: p.objective, scaleTasks });
      } finally {
        tf.dispose(Object.values(params));
      }
    };

    const iterations: FwIterationInfo[] = [];
    for (let t = 0; t < p.iterations; t++) {
      const t0 = performance.now();
      const targets = await objectiveTargets(t);
      let info: FwIterationInfo;
      if (p.variant === 'hard') {
        const g = gradientAt(theta, targets, targets.length);
        const scores = await scoreCandidates(g.grad, tensors, sources, {}, basis);
        const choice =
          p.oracle === 'task'
            ? Array(P).fill(selectTaskWise(scores).index)
            : selectLayerWise(scores, { fallback: p.layer_fallback }).choice;
        const target = await readTarget(sources, choice, tensors);
        const a = hardCoefficient(t, p.step_size, p.scaling);
        theta = hardUpdate(theta, target, tensors, { localMerge: p.local_merge, a, keep: p.keep });
        const names = choice.map((m) => (m < 0 ? null : sources[m].name));
        info = { iteration: t, lossPerTarget: g.lossPerTarget, picks: countPicks(names), a, seconds: 0 };
      } else {
        const lossPerTarget: number[] = [];
        const picks = await softSelect(
          o.targets.map((x) => x.name),
          sources.length,
          p.oracle,
          async (j) => {
            const g = gradientAt(theta, [targets[j]], targets.length);
            lossPerTarget.push(g.loss);
            return scoreCandidates(g.grad, tensors, sources, {}, basis);
          },
          p.layer_fallback,
        );
        const selected = [];
        for (const pick of picks) selected.push(await readTarget(sources, choiceOf(pick, P), tensors));
        const vectors = softTaskVectors(theta, selected, tensors);
        selected.length = 0;
        const layout = softLayout(
          picks.map((x) => (x.kind === 'task' ? x.selection.candidate : `composite:${x.target}`)),
          tensors,
        );
        const base = toParams(config, theta);
        let learned: { lambda: Float32Array; losses: number[] };
        try {
          const rowsAt = o.targets.map((target, j) => softStepRows(p, target.name, softData[j].n, t));
          learned = await learnSoftStepSizes({
            config,
            layout,
            theta: base,
            vectors,
            steps: p.adamerging_steps,
            init: softInit(t),
            lr: p.adamerging_lr,
            objective: p.step_objective === 'proxy' ? 'cross_entropy' : 'entropy',
            batchesAt: (step) =>
              Promise.all(
                o.targets.map(async (target, j) => ({
                  name: target.name,
                  head: heads[j],
                  batches: await readBatches(softData[j], rowsAt[j](step), per, soft(target).labeled),
                })),
              ),
          });
        } finally {
          tf.dispose(Object.values(base));
        }
        theta = softUpdate(theta, vectors, layout, learned.lambda);
        info = {
          iteration: t,
          lossPerTarget,
          picks: picks.map((x) =>
            x.kind === 'task'
              ? `${x.target}:${x.selection.candidate}`
              : `${x.target}:[${countPicks(x.selection.candidate).join(' ')}]`,
          ),
          a: NaN,
          softLosses: learned.losses,
          seconds: 0,
        };
      }
      info.seconds = (performance.now() - t0) / 1000;
      iterations.push(info);
      await o.onIteration?.(info);
    }
    return { config, tensors, theta, iterations };
  } finally {
    heads.forEach(disposeHead);
  }
}
