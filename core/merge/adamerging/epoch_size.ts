/**
 * `steps_per_epoch: auto`: how many optimiser steps the next epoch runs, so that orchestration (scheduling the
 * epoch activity, reading its start state, writing checkpoints and losses) stays within a share of the wall time.
 * Pure arithmetic on the run's own timings so far; the workflow imports it (no I/O, no Temporal).
 *
 * With s the seconds of a step, c the checkpoint seconds per step (a checkpoint every M steps) and f the fixed
 * seconds per epoch, an epoch of N steps spends f + N·c outside the steps and N·s inside, so the share is at most
 * `target` when N ≥ (1 − target)·f / (target·s − (1 − target)·c). The one-time session load is left out (a worker
 * pays it once per run, not per epoch). When checkpoints alone exceed the target no N helps: the epoch then runs
 * for AUTO_MAX_EPOCH_SECONDS, and a larger `checkpoint_every` is the remedy.
 */

/** Steps of the first epoch, whose timings size the next ones. */
export const AUTO_FIRST_EPOCH = 10;
/** The goal: orchestration at most this share of the epochs' wall time. */
export const AUTO_MAX_OVERHEAD = 0.05;
/**
 * Size the epochs for this share: the rest of AUTO_MAX_OVERHEAD is left to what a run pays once whatever its
 * epochs (planning, the worker's session load, the final merge, publishing: 3 % of a 500-step run on the mini-8
 * suite, `npm run bench -- orchestration`) and to the noise of the measurement.
 */
export const AUTO_TARGET = 0.01;
/** An epoch's estimated step time is capped (progress is reported per epoch; a long epoch is a long activity). */
export const AUTO_MAX_EPOCH_SECONDS = 900;
/** `parallel: tasks` pays its round trip every step, not per epoch: epochs only bound the history there. */
export const PARALLEL_EPOCH = 50;

export interface RunTimings {
  /** Steps done and epochs run so far. */
  steps: number;
  epochs: number;
  /** Wall seconds of the epochs as the workflow saw them, and inside them: steps, checkpoints, session loads. */
  epochWall: number;
  stepSeconds: number;
  checkpointSeconds: number;
  loadSeconds: number;
}

/** The next epoch's length under `steps_per_epoch: auto` (before clipping to the steps left). */
export function autoEpochSteps(t: RunTimings | undefined, parallel = false): number {
  if (parallel) return PARALLEL_EPOCH;
  if (!t || t.steps <= 0 || t.epochs <= 0 || !(t.stepSeconds > 0)) return AUTO_FIRST_EPOCH;
  const s = t.stepSeconds / t.steps;
  const c = Math.max(0, t.checkpointSeconds) / t.steps;
  const f = Math.max(0, t.epochWall - t.stepSeconds - t.checkpointSeconds - t.loadSeconds) / t.epochs;
  const cap = Math.max(AUTO_FIRST_EPOCH, Math.floor(AUTO_MAX_EPOCH_SECONDS / s));
  const denom = AUTO_TARGET * s - (1 - AUTO_TARGET) * c;
  if (denom <= 0) return cap;
  return Math.min(cap, Math.max(AUTO_FIRST_EPOCH, Math.ceil(((1 - AUTO_TARGET) * f) / denom)));
}
