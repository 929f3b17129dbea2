/**
 * The shapes of a durable AdaMerging run (workflow, activities, CLI) and the keys of its objects in the store.
 * Plain JSON only, no I/O and no tensors: the workflow imports this module, and all of it travels in payloads.
 * The data (θ0, task vectors, the Adam state, losses) stays in the store; these hold its URIs and scalars.
 */
import type { AdamergingConfig } from '../../config/schema';
import type { AdamergingParams } from './params';
import type { LambdaSummary } from './coefficients';
import type { RunResultBase } from '../../pipeline/run_types';

export interface AdaTaskRef {
  name: string;
  /** Fine-tuned model folder. */
  model: string;
  head: string;
  data: string;
  /** Rows in the task's data, and whether they carry labels (then the merged model is evaluated on them). */
  rows: number;
  labeled: boolean;
}

/** What the header-only validation found: everything later steps need, as URIs and counts. */
export interface AdaPlan {
  runId: string;
  params: AdamergingParams;
  /** Pretrained (θ0) folder and its weights file. */
  pretrained: string;
  baseFile: string;
  tasks: AdaTaskRef[];
  /** The merged tensors (the vision encoder's), in order; λ has K (task-wise) or K × L values. */
  tensorCount: number;
  lambdaSize: number;
  mergedElements: number;
  /** Output Hugging Face folder. */
  output: string;
  /** Output dtype of the float tensors ('base': each keeps θ0's). */
  dtype: 'base' | 'F32' | 'F16' | 'BF16';
  workPrefix: string;
  /** AdaMerging++: the processed task vectors, one safetensors object per task (set by the preparation step). */
  taskVectors?: string[];
  warnings: string[];
}

export interface EpochInput {
  plan: AdaPlan;
  /** The state to start from (undefined: the initial λ at step 0). */
  stateUri?: string;
  fromStep: number;
  steps: number;
  /** A verified checkpoint inside this epoch to start from (the first epoch of a resumed run). */
  resumeAt?: { step: number; stateUri: string };
}

export interface EpochResult {
  /** The state after the epoch's last step, at a step-numbered key. */
  stateUri: string;
  step: number;
  /** This epoch's losses per step (JSON in the store). */
  lossesUri: string;
  /** The loss per task at the epoch's last step. */
  lastLoss: number[];
  summary: LambdaSummary[];
  /** The worker-specific task queue of the worker that ran it (it holds θ0 and the task vectors in memory). */
  queue: string;
  /** Step this attempt started from (> fromStep when it resumed a checkpoint), wall seconds, seconds in steps. */
  resumedFrom: number;
  seconds: number;
  stepSeconds: number;
  /** Seconds writing checkpoints, and loading θ0 and the task vectors (0 on a cache hit). */
  checkpointSeconds: number;
  loadSeconds: number;
  /** Whether θ0 and the task vectors were already in this worker's cache. */
  cacheHit: boolean;
}

/** `parallel: tasks`: one task's gradient at one step, from the state at that step. */
export interface TaskGradientInput {
  plan: AdaPlan;
  /** The state at `step` (undefined: the initial λ, step 0). */
  stateUri?: string;
  step: number;
  /** Index of the task in plan.tasks. */
  task: number;
}

export interface TaskGradientResult {
  /** ∂loss_k/∂λ (F32, layout order) with the task's loss in its metadata: a claim check, not the values. */
  gradUri: string;
  loss: number;
  /** Seconds in the gradient (rows read, forward, backward, pullback), and loading the session (0 on a hit). */
  seconds: number;
  loadSeconds: number;
  cacheHit: boolean;
}

/** `parallel: tasks`: sum the K gradients of `step` in task order, take the Adam step, write the state. */
export interface ApplyStepInput {
  plan: AdaPlan;
  stateUri?: string;
  /** First step of the epoch this step belongs to, and the step after its last: the loss records run over it. */
  fromStep: number;
  step: number;
  end: number;
  /** One per task, in plan.tasks order. */
  gradUris: string[];
}

export interface ApplyStepResult {
  /** The state after the step (step + 1), at its step-numbered key. */
  stateUri: string;
  step: number;
  lossPerTask: number[];
  summary: LambdaSummary[];
  /** Set on the epoch's last step: the epoch's losses file. */
  lossesUri?: string;
  seconds: number;
}

/** The heartbeat of an epoch: the last checkpoint it wrote (a retry resumes there). */
export interface EpochHeartbeat {
  step: number;
  stateUri?: string;
}

/** One line of losses.json. Task-wise runs also record λ (as used, clamped when on) after the step. */
export interface LossRecord {
  step: number;
  loss: number[];
  lambda?: number[];
}

export interface AdaProgress {
  phase: string;
  /** Steps done and planned (the progress bar). */
  done: number;
  total: number;
  method: string;
  output: string;
  error?: string;
  lossPerTask?: number[];
  lambda?: LambdaSummary[];
  /** The latest optimiser state: usable after a cancel. */
  stateUri?: string;
  epochs: number;
}

/** What a run carries across continue-as-new: URIs and scalars. */
export interface AdaCarried {
  plan: AdaPlan;
  stateUri?: string;
  step: number;
  epochs: number;
  queue?: string;
  lastLoss?: number[];
  summary?: LambdaSummary[];
  timings: Record<string, number>;
  /** Orchestration accounting: wall seconds of the epochs as the workflow saw them, and inside the steps. */
  epochWall: number;
  stepSeconds: number;
  checkpointSeconds?: number;
  loadSeconds?: number;
  startedAt: number;
  /** Loss files written so far, in step order. */
  lossUris: string[];
}

/** A resumed run: the work prefix of the run it continues (which it keeps using). */
export interface ResumeInput {
  from: string;
  workPrefix: string;
  allowChangedInputs?: boolean;
}

export interface AdaRunInput {
  config: AdamergingConfig;
  heartbeatTimeoutSeconds?: number;
  /** Continue as new after this many epochs (default 50; the server may suggest it earlier). */
  epochsPerRun?: number;
  /** Seconds an epoch may wait on its worker's own queue before it goes to any worker (default 10). */
  affinityTimeoutSeconds?: number;
  /** Set by continue-as-new. */
  carried?: AdaCarried;
  /** Set by `mergeflow resume`: carry on from the committed work of an earlier run. */
  resume?: ResumeInput;
}

export interface AdaResult extends RunResultBase {
  steps: number;
  epochs: number;
  stateUri: string;
  lambdaJson: string;
  lambdaSafetensors: string;
  losses: string;
  report: string;
  lossPerTask: number[];
  lambda: LambdaSummary[];
  accuracy?: { average: number; tasks: Record<string, number> };
  /** Share of wall time not spent in optimiser steps, over the epochs (scheduling, loading, checkpoints). */
  orchestration: {
    epochWallSeconds: number;
    stepSeconds: number;
    /** Inside the epochs but outside the steps: writing checkpoints, loading the session. */
    checkpointSeconds: number;
    loadSeconds: number;
    /** The rest: scheduling the activity, workflow tasks, payloads, reading the starting state. */
    schedulingSeconds: number;
    overheadFraction: number;
  };
}

const pad = (n: number) => String(n).padStart(8, '0');

export function stateKey(plan: Pick<AdaPlan, 'workPrefix'>, step: number): string {
  return `${plan.workPrefix}state/step-${pad(step)}.safetensors`;
}

export function lossesKey(plan: Pick<AdaPlan, 'workPrefix'>, fromStep: number): string {
  return `${plan.workPrefix}losses/from-${pad(fromStep)}.json`;
}

export function gradKey(plan: Pick<AdaPlan, 'workPrefix'>, step: number, task: string): string {
  return `${plan.workPrefix}grad/step-${pad(step)}/${task}.safetensors`;
}

export function taskVectorKey(plan: Pick<AdaPlan, 'workPrefix'>, task: string): string {
  return `${plan.workPrefix}task-vectors/${task}.safetensors`;
}

/** The step a state key names, or undefined. */
export function stepOfStateKey(uri: string): number | undefined {
  const m = /\/state\/step-(\d+)\.safetensors$/.exec(uri);
  return m ? Number(m[1]) : undefined;
}
