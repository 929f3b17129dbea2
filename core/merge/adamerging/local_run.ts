/**
 * AdaMerging (and AdaMerging++) in this process: load θ0, the task vectors, the heads and each task's
 * unlabeled inputs through the existing loaders, then run optimiser steps on λ. The reference executor for
 * tests and small runs; the optimiser update is handed in (`OptimizerStep`), e.g. Adam from core/optim.
 */
import { checkImageSize, Dataset, openDataset } from '../../data/dataset';
import { clipVisionParamShapes, disposeParams, loadClipVision } from '../../models/clip_vit';
import { ClassificationHead, disposeHead, headDim, loadHead } from '../../models/head';
import { ModelError } from '../../models/errors';
import { ADAM_DEFAULTS, adamInit, AdamOptions, AdamState, adamStep } from '../../optim/adam';
import { BatchRowCursor } from './batches';
import {
  checkLambda,
  Granularity,
  initLambda,
  LAMBDA_INIT,
  LambdaLayout,
  LambdaSummary,
  makeLayout,
  summarizeLambda,
} from './coefficients';
import { AdaMergingModel, BatchObjective, entropyLossAndGrad, LabeledBatch } from './gradient';
import { disposeTaskVectorStack, stackTaskVectors } from './merged';
import { tiesTaskVectors } from './ties_vectors';
import { loadTaskVectors } from './task_vectors_load';

/** One optimiser update: the new λ from the current λ, its gradient and the step number (0-based). */
export type OptimizerStep = (lambda: Float32Array, grad: Float32Array, step: number) => Float32Array;

export interface AdaMergingTaskInput {
  name: string;
  /** Fine-tuned model folder (config.json + model.safetensors), as loadClipVision reads it. */
  model: string;
  /** The task's frozen head (safetensors). */
  head: string;
  /** The task's unlabeled inputs (a dataset; its labels, if any, are never read). */
  data: string;
}

export interface LocalRunOptions {
  /** Pretrained model folder (θ0). */
  pretrained: string;
  tasks: readonly AdaMergingTaskInput[];
  /**
   * Extra pool models without inputs (e.g. irrelevant fine-tunes): their task vectors join the merge after the
   * tasks', and their λ is learned from the tasks' entropy alone.
   */
  extraModels?: readonly { name: string; model: string }[];
  granularity: Granularity;
  steps: number;
  optimizer: OptimizerStep;
  /** Run seed: picks the rows of every step. */
  seed: number;
  batchSize?: number;
  batchesPerTask?: number;
  init?: number;
  clamp?: boolean;
  /** AdaMerging++: replace each τk by its TIES-processed part with this keep fraction (e.g. 0.2). */
  tiesKeep?: number;
  /** Resume: start at this step from this λ (default step 0 from the initial λ). */
  from?: { step: number; lambda: Float32Array };
  /** A lab's objective in place of the entropy (reads the batches' labels; see gradient.ts BatchObjective). */
  objective?: BatchObjective;
  /** Called after each step; may throw to stop. */
  onStep?: (info: StepInfo) => void | Promise<void>;
}

export interface StepInfo {
  step: number;
  lossPerTask: number[];
  /** λ after this step's update. */
  lambda: Float32Array;
  /** Wall time of this step (rows read, gradient, update). */
  seconds: number;
}

export interface LocalRunResult {
  layout: LambdaLayout;
  lambda: Float32Array;
  /** losses[s][k]: task k's mean entropy at step s (before that step's update). */
  losses: number[][];
  secondsPerStep: number[];
  summary: LambdaSummary[];
}

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`AdaMerging: ${what} must be a positive integer, got ${v}`);
  return v;
}

export async function runAdaMergingLocal(o: LocalRunOptions): Promise<LocalRunResult> {
  const batchSize = positiveInt(o.batchSize ?? 16, 'batchSize');
  const batchesPerTask = positiveInt(o.batchesPerTask ?? 1, 'batchesPerTask');
  if (!Number.isSafeInteger(o.steps) || o.steps < 0) throw new Error(`AdaMerging: steps must be >= 0, got ${o.steps}`);
  const clamp = o.clamp ?? true;

  const pre = await loadClipVision(o.pretrained);
  const config = pre.config;
  const shapes = clipVisionParamShapes(config);
  const pool = [...o.tasks, ...(o.extraModels ?? [])];
  const layout = makeLayout(
    o.granularity,
    pool.map((t) => t.name),
    shapes.map((s) => s.name),
  );
  const heads: ClassificationHead[] = [];
  let model: AdaMergingModel | undefined;
  try {
    // τk = θk − θ0 in float32, tensor by tensor, in layout order
    const baseValues = layout.tensors.map((n) => pre.params[n].dataSync() as Float32Array);
    let vectors = await loadTaskVectors(
      pool.map((t) => t.model),
      layout.tensors,
      baseValues,
      config,
    );
    if (o.tiesKeep !== undefined) vectors = tiesTaskVectors(vectors, o.tiesKeep).vectors;
    const byName = vectors.map((tv) => Object.fromEntries(layout.tensors.map((n, l) => [n, tv[l]])));
    const shapeOf = Object.fromEntries(shapes.map((s) => [s.name, s.shape]));
    vectors = [];
    model = { config, layout, base: pre.params, taskVectors: stackTaskVectors(layout, shapeOf, byName), clamp };

    for (const t of o.tasks) {
      const h = await loadHead(t.head);
      heads.push(h);
      if (headDim(h) !== config.projectionDim) {
        throw new ModelError(
          `${h.source}: head is for ${headDim(h)}-dim embeddings but θ0 projects to ${config.projectionDim}`,
        );
      }
    }
    const data: Dataset[] = [];
    for (const t of o.tasks) {
      const ds = await openDataset(t.data, { cacheBytes: 64 * 1024 * 1024 });
      checkImageSize(ds, [config.numChannels, config.imageSize, config.imageSize]);
      data.push(ds);
    }
    const cursors = o.tasks.map(
      (t, k) => new BatchRowCursor({ seed: o.seed, rows: data[k].n, batchSize, batchesPerTask }, t.name),
    );

    let lambda = o.from ? Float32Array.from(o.from.lambda) : initLambda(layout, o.init ?? LAMBDA_INIT);
    checkLambda(layout, lambda);
    const first = o.from?.step ?? 0;
    const losses: number[][] = [];
    const secondsPerStep: number[] = [];
    for (let step = first; step < first + o.steps; step++) {
      const t0 = performance.now();
      const batches: LabeledBatch[][] = [];
      for (let k = 0; k < o.tasks.length; k++) {
        const rows = cursors[k].batches(step);
        const read = await Promise.all(rows.map((r) => data[k].readRows(r)));
        // labels travel only to a lab's objective; AdaMerging's entropy never reads them
        batches.push(
          read.map((b) => ({ inputs: b.inputs, shape: b.shape, ...(o.objective ? { labels: b.labels } : {}) })),
        );
      }
      const { lossPerTask, grad } = entropyLossAndGrad(model, heads, lambda, batches, o.objective);
      if (!lossPerTask.every(Number.isFinite) || !grad.every(Number.isFinite)) {
        throw new Error(`AdaMerging: non-finite loss or gradient at step ${step} (losses ${lossPerTask.join(', ')})`);
      }
      const next = o.optimizer(lambda, grad, step);
      checkLambda(layout, next);
      lambda = Float32Array.from(next);
      const seconds = (performance.now() - t0) / 1000;
      losses.push(lossPerTask);
      secondsPerStep.push(seconds);
      await o.onStep?.({ step, lossPerTask, lambda: Float32Array.from(lambda), seconds });
    }
    return { layout, lambda, losses, secondsPerStep, summary: summarizeLambda(layout, lambda, { clamp }) };
  } finally {
    heads.forEach(disposeHead);
    if (model) disposeTaskVectorStack(model.taskVectors);
    disposeParams(pre.params);
  }
}

/** Adam over λ as an OptimizerStep (state kept in the closure): the in-process runs' usual optimiser. */
export function adamOptimizer(opts: Partial<AdamOptions> = {}): OptimizerStep {
  let state: AdamState | undefined;
  return (lambda, grad) => {
    state ??= adamInit(Float64Array.from(lambda));
    state = adamStep(state, grad, { ...ADAM_DEFAULTS, ...opts });
    return Float32Array.from(state.params);
  };
}
