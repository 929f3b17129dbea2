/**
 * The two kinds of training job a suite build runs. Each is a pure function of its input (no I/O), so it can
 * run in this thread or in a worker thread (see pool.ts) with the same result, bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ClipVisionConfig } from '../models/clip_vit';
import { disposeParams } from '../models/clip_vit';
import type { TrainRecipe } from './recipe';
import {
  embedRows,
  HeadValues,
  mixedHead,
  ParamValues,
  prototypeHead,
  toTensors,
  trainEncoder,
  trainEncoderSharded,
  TrainJob,
  TrainSet,
} from './train';
import { rngFor } from '../data/rng';

export interface PretrainJob {
  kind: 'pretrain';
  config: ClipVisionConfig;
  init: ParamValues;
  data: TrainSet;
  pretextHead: HeadValues;
  recipe: TrainRecipe;
  seed: number;
}

export interface PretrainOutput {
  params: ParamValues;
  lossStart: number;
  lossEnd: number;
  /** Wall time of the job (not part of any written file). */
  seconds?: number;
}

export interface TaskJob {
  kind: 'task';
  task: string;
  classes: number;
  config: ClipVisionConfig;
  pretrained: ParamValues;
  train: TrainSet;
  /**
   * Images the head is fitted on, with the task's labels: the canonical (untransformed source) view of the
   * first train rows, so the head knows the classes but not the task's image transform.
   */
  headSet: TrainSet;
  headLogitScale: number;
  /** Centre the class prototypes (subtract their mean) before normalising them. */
  headCentre?: boolean;
  /** Prototype weight in the head rows (SuiteRecipe.headMix); undefined: pure prototypes. */
  headMix?: number;
  /** What seeds the random part of the mixed head (default: the task's name). */
  headKey?: string;
  recipe: TrainRecipe;
  seed: number;
}

export interface TaskOutput {
  task: string;
  head: HeadValues;
  params: ParamValues;
  lossStart: number;
  lossEnd: number;
  seconds?: number;
}

export type Job = PretrainJob | TaskJob;
export type JobOutput = PretrainOutput | TaskOutput;
export type StepReport = (step: number, total: number, loss: number) => void;

/** The training run a pretrain job is. */
export function pretrainTrainJob(job: PretrainJob, onStep?: StepReport): TrainJob {
  return {
    config: job.config,
    params: job.init,
    data: job.data,
    head: job.pretextHead,
    trainHead: true,
    recipe: job.recipe,
    seed: job.seed,
    purpose: ['pretrain'],
    onStep,
  };
}

/** Pretraining in this thread; with `shards` > 1 each step is split as the data-parallel run splits it. */
export function runPretrain(job: PretrainJob, onStep?: StepReport, shards = 1): PretrainOutput {
  const tj = pretrainTrainJob(job, onStep);
  const r = shards > 1 ? trainEncoderSharded(tj, shards) : trainEncoder(tj);
  return { params: r.params, lossStart: r.lossStart, lossEnd: r.lossEnd };
}

/**
 * Fit the task's head on the frozen pretrained encoder (class-mean prototypes of the normalised embeddings
 * of the head images), then fine-tune the whole encoder through that frozen head with cross-entropy.
 */
export function runTask(job: TaskJob, onStep?: StepReport): TaskOutput {
  const c = job.config;
  const m = job.headSet.n;
  const p = toTensors(c, job.pretrained);
  let head: HeadValues;
  try {
    const emb = embedRows(
      c,
      p,
      job.headSet.images,
      Int32Array.from({ length: m }, (_, i) => i),
    );
    head = prototypeHead(emb, job.headSet.labels, job.classes, c.projectionDim, job.headLogitScale, job.headCentre);
    if (job.headMix !== undefined && job.headMix < 1)
      head = mixedHead(head, job.headMix, rngFor(job.seed, 'head-mix', job.headKey ?? job.task));
  } finally {
    disposeParams(p);
  }
  const r = trainEncoder({
    config: c,
    params: job.pretrained,
    data: job.train,
    head,
    recipe: job.recipe,
    seed: job.seed,
    purpose: ['finetune', job.task],
    onStep,
  });
  return { task: job.task, head, params: r.params, lossStart: r.lossStart, lossEnd: r.lossEnd };
}

export function runJob(job: Job, onStep?: StepReport): JobOutput {
  const t0 = Date.now();
  const out = job.kind === 'pretrain' ? runPretrain(job, onStep) : runTask(job, onStep);
  out.seconds = (Date.now() - t0) / 1000;
  if (tf.memory().numTensors > 10_000)
    throw new Error(`tensor leak: ${tf.memory().numTensors} tensors alive after a job`);
  return out;
}
