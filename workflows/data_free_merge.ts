/**
 * One data-free merge (weight averaging, Task Arithmetic, TIES) as a durable workflow. The steps (plan, the passes
 * the method declares, merge the shards while hashing what they read, publish) come from core/pipeline/driver, which the
 * in-process runner shares; here they run as activities, shards fanned out at once. Only URIs, counts and a
 * handful of scalars cross payloads; tensors stay in the store.
 */
import {
  ActivityCancellationType,
  ActivityOptions,
  CancellationScope,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { MergeProgress, MergeResult, MergeRunInput } from '../core/pipeline/run_types';
import type { MergePlan } from '../core/pipeline/plan';
import { driveMerge, MergeExecutor, totalUnits } from '../core/pipeline/driver';
import { MergeMethod, MergeStatus } from './search_attributes';

export const progressQuery = defineQuery<MergeProgress>('progress');

/** Errors that retrying cannot fix: bad or mismatched input. */
export const NON_RETRYABLE = [
  'InputMismatchError',
  'SafetensorsError',
  'NotFoundError',
  'ConfigError',
  'ZodError',
  'MethodNotImplementedError',
];

function activityOptions(heartbeatSeconds: number): ActivityOptions {
  return {
    startToCloseTimeout: '4 hours',
    // on cancel, wait until running shards have stopped before clearing their work
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 8,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  };
}

export async function dataFreeMerge(input: MergeRunInput): Promise<MergeResult> {
  const cfg = input.config;
  const runId = workflowInfo().workflowId;
  const acts = proxyActivities<Activities>(activityOptions(input.heartbeatTimeoutSeconds ?? 60));
  const quick = proxyActivities<Activities>({ ...activityOptions(30), startToCloseTimeout: '10 minutes' });
  const progress: MergeProgress = { phase: 'planning', done: 0, total: 1, method: cfg.method, output: cfg.output };
  setHandler(progressQuery, () => progress);
  upsertSearchAttributes([
    { key: MergeStatus, value: 'running' },
    { key: MergeMethod, value: cfg.method },
  ]);
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  let phaseStart = t0;
  const phase = (p: MergeProgress['phase']): void => {
    timings[progress.phase] = (Date.now() - phaseStart) / 1000;
    phaseStart = Date.now();
    progress.phase = p;
  };
  const exec: MergeExecutor = {
    all: (work) => Promise.all(work.map((w) => w())),
    planMerge: quick.planMerge,
    mapShard: acts.mapShard,
    reducePass: quick.reducePass,
    writeCoefficients: quick.writeCoefficients,
    mergeShard: acts.mergeShard,
    publishMerge: acts.publishMerge,
  };

  let plan: MergePlan | undefined;
  try {
    const r = await driveMerge(cfg, runId, exec, {
      planned: (p) => {
        plan = p;
        progress.total = totalUnits(p);
      },
      phase: (p) => {
        if (p !== progress.phase) phase(p);
      },
      unit: () => progress.done++,
    });
    phase('completed');
    timings.total = (Date.now() - t0) / 1000;
    upsertSearchAttributes([{ key: MergeStatus, value: 'completed' }]);
    return {
      runId,
      method: cfg.method,
      output: r.output,
      manifestUri: r.manifestUri,
      tensorCount: r.plan.tensorCount,
      mergedElements: r.plan.mergedElements,
      shards: r.plan.shards.length,
      ...r.state,
      warnings: r.plan.warnings,
      timings,
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    progress.phase = cancelled ? 'cancelled' : 'failed';
    progress.error = (err as Error).cause ? String(((err as Error).cause as Error).message) : (err as Error).message;
    const finalPlan = plan;
    await CancellationScope.nonCancellable(async () => {
      if (finalPlan && cancelled) await quick.clearWork(finalPlan).catch(() => undefined);
      upsertSearchAttributes([{ key: MergeStatus, value: progress.phase }]);
    });
    throw err;
  }
}
