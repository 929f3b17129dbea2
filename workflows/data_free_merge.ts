/**
 * One data-free merge (weight averaging, Task Arithmetic, TIES) as a durable workflow. The steps (plan, the passes
 * the method declares, merge the shards while hashing what they read, publish) come from core/pipeline/driver, which the
 * in-process runner shares; here they run as activities, shards fanned out at once. Only URIs, counts and a
 * handful of scalars cross payloads; tensors stay in the store.
 */
import {
  ActivityOptions,
  CancellationScope,
  defineQuery,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { MergeProgress, MergeResult, MergeRunInput } from '../core/pipeline/run_types';
import { driveMerge, MergeExecutor, MergeResume, totalUnits } from '../core/pipeline/driver';
import { markRunStarted, MergeStatus } from './search_attributes';
import { runConfig } from './run_config';
import { workPrefixFor } from '../core/resume/work';
import { longActivityOptions, NON_RETRYABLE, retryPolicy } from './activity_options';

export const progressQuery = defineQuery<MergeProgress>('progress');

/** Errors that retrying cannot fix: bad or mismatched input. */
export { NON_RETRYABLE };

/** On cancel, wait until running shards have stopped before clearing their work. */
function activityOptions(heartbeatSeconds: number): ActivityOptions {
  return longActivityOptions(heartbeatSeconds, retryPolicy(), '4 hours');
}

export async function dataFreeMerge(input: MergeRunInput): Promise<MergeResult> {
  let cfg = input.config;
  const runId = workflowInfo().workflowId;
  const acts = proxyActivities<Activities>(activityOptions(input.heartbeatTimeoutSeconds ?? 60));
  const quick = proxyActivities<Activities>({ ...activityOptions(30), startToCloseTimeout: '10 minutes' });
  const progress: MergeProgress = { phase: 'planning', done: 0, total: 1, method: cfg.method, output: cfg.output };
  setHandler(progressQuery, () => progress);
  // runs started before resume support have no run record or memo: replay them as they ran
  const resumable = patched('resume-ledger');
  markRunStarted(cfg.method);
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
    // a run records its plan and pins its inputs before any work; a resumed run that plans again keeps its work prefix
    planMerge: async (c, id) => {
      const planned = await quick.planMerge(c, id);
      const p = input.resume ? { ...planned, workPrefix: input.resume.workPrefix } : planned;
      if (resumable) await quick.recordMergeRun(p, c);
      return p;
    },
    mapShard: acts.mapShard,
    reducePass: quick.reducePass,
    writeCoefficients: quick.writeCoefficients,
    mergeShard: acts.mergeShard,
    publishMerge: acts.publishMerge,
  };

  try {
    let resume: MergeResume | undefined;
    if (input.resume) {
      const opened = await quick.openMergeResume(input.resume);
      if (opened.plan) resume = { plan: opened.plan, committed: opened.found ?? {} };
      upsertMemo({ workPrefix: input.resume.workPrefix, resumedFrom: input.resume.from });
    } else {
      cfg = await runConfig(cfg, quick.resolveLatest);
      // before any work: where it goes (for `resume` and `gc`, even if the run is stopped at once)
      if (resumable) upsertMemo({ workPrefix: workPrefixFor(cfg.output, runId) });
    }
    progress.output = cfg.output;
    const r = await driveMerge(
      cfg,
      runId,
      exec,
      {
        planned: (p) => {
          progress.total = totalUnits(p);
        },
        phase: (p) => {
          if (p !== progress.phase) phase(p);
        },
        unit: () => progress.done++,
      },
      resume,
    );
    phase('completed');
    timings.total = (Date.now() - t0) / 1000;
    upsertSearchAttributes([{ key: MergeStatus, value: 'completed' }]);
    return {
      runId,
      method: cfg.method,
      output: r.output,
      ...(r.files ? { outputFiles: r.files } : {}),
      manifestUri: r.manifestUri,
      tensorCount: r.plan.tensorCount,
      mergedElements: r.plan.mergedElements,
      shards: r.plan.shards.length,
      ...r.state,
      warnings: r.plan.warnings,
      timings,
      ...(input.resume ? { resumedFrom: input.resume.from, reused: r.reused } : {}),
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    progress.phase = cancelled ? 'cancelled' : 'failed';
    progress.error = (err as Error).cause ? String(((err as Error).cause as Error).message) : (err as Error).message;
    // the committed work stays in the work prefix: `mergeflow resume` carries on from it, `mergeflow gc` removes it
    await CancellationScope.nonCancellable(async () => {
      upsertSearchAttributes([{ key: MergeStatus, value: progress.phase }]);
    });
    throw err;
  }
}
