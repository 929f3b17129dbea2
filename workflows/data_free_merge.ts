/**
 * One data-free merge (weight averaging, Task Arithmetic, TIES) as a durable workflow:
 * plan (headers only) -> hash inputs -> whole-model passes the method needs -> merge shards in parallel -> publish.
 * Only URIs, counts and a handful of scalars cross payloads; tensors stay in the store.
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

/** Units of work in the bar: one per shard per pass, plus planning, hashing and publishing. */
function totalUnits(plan: MergePlan): number {
  const s = plan.shards.length;
  const passes = (plan.passes.includes('magnitude') ? 2 : 0) + (plan.passes.includes('sign') ? 1 : 0) + 1;
  return 2 + passes * s + 1;
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
  const tick = <T>(p: Promise<T>): Promise<T> =>
    p.then((v) => {
      progress.done++;
      return v;
    });

  let plan: MergePlan | undefined;
  try {
    plan = await quick.planMerge(cfg, runId);
    const shards = plan.shards.map((s) => s.index);
    progress.total = totalUnits(plan);
    progress.done = 1;

    phase('hashing');
    const [baseHash, ...modelHashes] = await tick(
      Promise.all([plan.base, ...plan.models].map((m) => acts.hashCheckpoint(m.uri))),
    );
    const hashes = { base: baseHash, models: Object.fromEntries(plan.models.map((m, i) => [m.name, modelHashes[i]])) };

    const global: { thresholds?: number[]; majoritySign?: number } = {};
    if (plan.passes.includes('magnitude')) {
      phase('threshold');
      const p = plan;
      const keep = Number(plan.params.keep);
      const highUris = await Promise.all(shards.map((s) => tick(acts.histogramShard(p, s, 'high'))));
      const high = await quick.reduceHigh(p, highUris, keep);
      const lowUris = await Promise.all(shards.map((s) => tick(acts.histogramShard(p, s, 'low', high.highs))));
      global.thresholds = await quick.reduceLow(p, lowUris, high);
    }
    if (plan.passes.includes('sign')) {
      phase('sign');
      const p = plan;
      const sums = await Promise.all(shards.map((s) => tick(acts.signShard(p, s, global.thresholds!))));
      global.majoritySign = Math.sign(sums.reduce((a, b) => a + b, 0));
    }

    phase('merging');
    const p = plan;
    const parts = await Promise.all(shards.map((s) => tick(acts.mergeShard(p, s, global))));

    phase('publishing');
    const published = await tick(acts.publishMerge(plan, parts, hashes, cfg));
    phase('completed');
    timings.total = (Date.now() - t0) / 1000;
    upsertSearchAttributes([{ key: MergeStatus, value: 'completed' }]);
    return {
      runId,
      method: cfg.method,
      output: published.output,
      manifestUri: published.manifestUri,
      tensorCount: plan.tensorCount,
      mergedElements: plan.mergedElements,
      shards: plan.shards.length,
      ...global,
      warnings: plan.warnings,
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
