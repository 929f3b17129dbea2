/**
 * The shapes of a durable Frank-Wolfe run (workflow, activities, CLI) and the keys of its objects in the store.
 * Plain JSON only, no I/O and no tensors: the workflow imports this module and all of it travels in payloads.
 * θt, the gradients and the candidates stay in the store; these hold their URIs, the oracle's sums and scalars.
 */
import type { FrankWolfeConfig } from '../../config/schema';
import type { MergeConfig } from '../../config/schema';
import type { RunResultBase } from '../../pipeline/run_types';
import type { ResumeInput } from '../adamerging/run_types';
import type { FrankWolfeParams } from './params';

export interface FwCandidate {
  name: string;
  /** A checkpoint: a Hugging Face folder or a .safetensors object. */
  uri: string;
}

export interface FwTargetRef {
  name: string;
  head: string;
  /** The labeled proxy set (cross_entropy) and the unlabeled test inputs (entropy, FW-Soft), with their rows. */
  proxy?: string;
  proxyRows: number;
  data?: string;
  dataRows: number;
  /** Whether `data` carries labels (then the merged model is evaluated on it). */
  labeled: boolean;
}

/** What the header-only validation found. */
export interface FwPlan {
  runId: string;
  params: FrankWolfeParams;
  /** The resolved start: ta, ties, pretrained or a saved merge's URI. */
  start: string;
  pretrained: string;
  /** The pool in a fixed order (listed order, or sorted by name when discovered). */
  pool: FwCandidate[];
  targets: FwTargetRef[];
  /** The merged tensors (the vision encoder's), in the model's order: Σp runs in this order. */
  tensors: string[];
  /** The oracle's shards: contiguous runs of `tensors` of similar sizes. */
  shards: string[][];
  tensorCount: number;
  mergedElements: number;
  output: string;
  dtype: 'base' | 'F32' | 'F16' | 'BF16';
  workPrefix: string;
  /** The data-free merge that makes a TA / TIES start (run as a child workflow), when the start is one. */
  startMerge?: MergeConfig;
  warnings: string[];
}

export interface FwGradientInput {
  plan: FwPlan;
  iteration: number;
  theta: string;
  /** Index into plan.targets. */
  target: number;
}

export interface FwGradientResult {
  uri: string;
  /** The target's term of f at θt (scaled by 1/(rows · targets)). */
  loss: number;
  seconds: number;
}

export interface FwOracleInput {
  plan: FwPlan;
  iteration: number;
  shard: number;
  /** One gradient file per target, target order. */
  grads: string[];
  /** sum: score under g = Σj g_j (FW-Hard); each: one set of scores per g_j (FW-Soft). */
  mode: 'sum' | 'each';
  candidates: FwCandidate[];
}

/** The oracle's sums for one shard's tensors (OracleScores with plain arrays, for the payload). */
export interface FwScoresJson {
  candidates: string[];
  tensors: string[];
  dot: number[];
  candSq: number[];
  gradSq: number[];
}

export interface FwOracleResult {
  scores: FwScoresJson[];
  seconds: number;
  /** Candidate tensors read, and the largest one (values): what the worker held at a time. */
  reads: number;
  peakRssBytes: number;
}

/** One selected model: per merged tensor the index of the candidate (−1: keep θt). */
export interface FwPick {
  /** The target it was picked for (FW-Soft), or 'all' (FW-Hard). */
  target: string;
  choice: number[];
}

export interface FwUpdateInput {
  plan: FwPlan;
  iteration: number;
  theta: string;
  candidates: FwCandidate[];
  picks: FwPick[];
  /** The iteration so far: once θt+1 is written, the update commits it to the ledger with it (resume). */
  commit?: FwIterationDraft;
}

/** An iteration's record before its update ran (what the update step commits with θt+1). */
export type FwIterationDraft = Omit<FwIterationRecord, 'softLastLoss' | 'seconds'> & {
  seconds: { gradient: number; oracle: number; activities: number };
};

export interface FwUpdateResult {
  theta: string;
  seconds: number;
  /** FW-Soft: the AdaMerging losses of this iteration, in the store. */
  softLosses?: string;
  softLastLoss?: number;
}

/** One iteration, as the workflow records it (and publishes in selections.json). */
export interface FwIterationRecord {
  iteration: number;
  /** f at θt (before this iteration's update), per target, and their sum. */
  lossPerTarget: number[];
  objective: number;
  /** The picks, candidate names per merged tensor (task-wise: one name). */
  picks: { target: string; candidate?: string; perTensor?: (string | null)[] }[];
  /** FW-Hard: a = γt · scaling. */
  a?: number;
  softLastLoss?: number;
  /**
   * Wall seconds of each phase as the workflow saw it (fan-outs included: queueing for a free slot counts),
   * of the whole iteration, and the activities' own seconds summed (their work, whatever ran in parallel).
   */
  seconds: { gradient: number; oracle: number; update: number; wall: number; activities?: number };
}

export interface FwProgress {
  phase: string;
  done: number;
  total: number;
  method: string;
  output: string;
  error?: string;
  /** θt: the latest snapshot (after a cancel, the last complete iteration's model). */
  thetaUri?: string;
  objective?: number[];
  lastPicks?: FwIterationRecord['picks'];
}

export interface FwCarried {
  plan: FwPlan;
  iteration: number;
  theta: string;
  /** The start's URI: FW-Hard's extra candidate 'start'. */
  startUri: string;
  records: FwIterationRecord[];
  timings: Record<string, number>;
  startedAt: number;
  /** A resumed run: what it took over from the run it resumes (start, iterations, gradients). */
  reused?: Record<string, number>;
}

export interface FwRunInput {
  config: FrankWolfeConfig;
  heartbeatTimeoutSeconds?: number;
  /** Continue as new after this many iterations (default 10; the server may suggest it earlier). */
  iterationsPerRun?: number;
  carried?: FwCarried;
  /** Set by `mergeflow resume`: carry on from the committed work of an earlier run. */
  resume?: ResumeInput;
}

export interface FwResult extends RunResultBase {
  iterations: number;
  variant: 'hard' | 'soft';
  oracle: 'task' | 'layer';
  objective: number[];
  selections: string;
  objectivePng: string;
  selectionPng: string;
  accuracy?: { average: number; tasks: Record<string, number> };
  /**
   * Seconds in each phase (wall, as the workflow saw it), summed over the iterations; orchestration = wall −
   * the phases (workflow tasks between them, the pick); activities = the activities' own seconds summed.
   */
  split: { gradient: number; oracle: number; update: number; orchestration: number; wall: number; activities: number };
}

const pad = (n: number) => String(n).padStart(5, '0');

export const START_CANDIDATE = 'start';

export function thetaKey(plan: Pick<FwPlan, 'workPrefix'>, iteration: number): string {
  return `${plan.workPrefix}theta/iter-${pad(iteration)}.safetensors`;
}

export function gradKey(plan: Pick<FwPlan, 'workPrefix'>, iteration: number, target: string): string {
  return `${plan.workPrefix}grad/iter-${pad(iteration)}/${target}.safetensors`;
}

export function softLossesKey(plan: Pick<FwPlan, 'workPrefix'>, iteration: number): string {
  return `${plan.workPrefix}soft/iter-${pad(iteration)}.json`;
}

export function startFolder(plan: Pick<FwPlan, 'workPrefix'>): string {
  return `${plan.workPrefix}start`;
}
