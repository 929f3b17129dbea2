/** Shapes shared by the merge workflow, its activities and the CLI (plain JSON: they travel in payloads). */
import type { Committed } from '../store/types';
import type { MergeConfig } from '../config/schema';

/**
 * planning, then the phase each declared pass names (TIES: threshold, sign), merging, publishing, and
 * finally completed, failed or cancelled.
 */
export type RunPhase = string;

export interface MergeProgress {
  phase: RunPhase;
  /** Work units (shard passes) done and planned; the bar is done / total. */
  done: number;
  total: number;
  method: string;
  output: string;
  error?: string;
}

export interface MergeRunInput {
  config: MergeConfig;
  /** Seconds without a heartbeat before a shard activity is retried elsewhere. */
  heartbeatTimeoutSeconds?: number;
  /** Set by `mergeflow resume`: carry on from the committed work of an earlier run (its work prefix). */
  resume?: { from: string; workPrefix: string; allowChangedInputs?: boolean };
}

/** What every finished run returns: the published output and a few scalars. */
export interface RunResultBase {
  runId: string;
  method: string;
  output: Committed;
  /** A sharded output's files (the shards, then model.safetensors.index.json, which `output` names). */
  outputFiles?: Committed[];
  manifestUri: string;
  tensorCount: number;
  mergedElements: number;
  shards: number;
  warnings: string[];
  timings: Record<string, number>;
  /** The run this one resumed, and the units it took from that run's committed work instead of redoing them. */
  resumedFrom?: string;
  reused?: Record<string, number>;
}

export interface MergeResult extends RunResultBase {
  /** What the method's passes found (TIES: thresholds, majoritySign). */
  thresholds?: number[];
  majoritySign?: number;
}

export const TASK_QUEUE_DEFAULT = 'mergeflow';
export const PROGRESS_QUERY = 'progress';
export const STATUS_SEARCH_ATTRIBUTE = 'MergeStatus';
export const METHOD_SEARCH_ATTRIBUTE = 'MergeMethod';
