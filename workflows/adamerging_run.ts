/**
 * AdaMerging as a durable run: validate (headers only) → AdaMerging++ preparation (processed task vectors to the
 * store) → epochs of Adam steps, each one activity on one worker, routed back to the worker that holds the run's
 * tensors (its own task queue) and to any worker when that one is gone → the final merge through the linear
 * kernel → evaluation when the data carry labels → publish. The workflow holds URIs and scalars only; it
 * continues as new every `epochsPerRun` epochs (or when the server suggests it), carrying them.
 *
 * With `parallel: tasks` an epoch is run from here instead: each step fans out one gradient activity per task
 * (any worker) and then one reduce activity sums them in task order and takes the Adam step. The gradients and
 * states travel as store URIs; the epoch's state and losses files are the ones the sequential epoch writes.
 */
import {
  ActivityFailure,
  ActivityOptions,
  CancellationScope,
  ContinueAsNew,
  makeContinueAsNewFunc,
  defineQuery,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  TimeoutFailure,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type {
  AdaPlan,
  AdaCarried,
  AdaProgress,
  AdaResult,
  AdaRunInput,
  ApplyStepResult,
  EpochInput,
  EpochResult,
} from '../core/merge/adamerging/run_types';
import { TimeoutType } from '@temporalio/common';
import { autoEpochSteps } from '../core/merge/adamerging/epoch_size';
import { DATA_DRIVEN_ERRORS, longActivityOptions, quickActivityOptions, retryPolicy } from './activity_options';
import { markRunStarted, MergeStatus } from './search_attributes';
import { runConfig, scheduledTime } from './run_config';
import { fillScheduledTime, hasLatestUnder } from '../core/schedule/template';
import { workPrefixFor } from '../core/resume/work';

export const adaProgressQuery = defineQuery<AdaProgress>('progress');

const RETRY = retryPolicy([...DATA_DRIVEN_ERRORS, 'EpochStoppedError']);

/** A cancelled epoch writes its state before it stops: the workflow waits for it. */
const longOptions = (heartbeatSeconds: number): ActivityOptions => longActivityOptions(heartbeatSeconds, RETRY);

function isScheduleToStart(e: unknown): boolean {
  return (
    e instanceof ActivityFailure &&
    e.cause instanceof TimeoutFailure &&
    e.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

export async function adaMergingRun(input: AdaRunInput): Promise<AdaResult> {
  let cfg = input.carried || input.resume ? input.config : fillScheduledTime(input.config, scheduledTime());
  const runId = workflowInfo().workflowId;
  const opts = longOptions(input.heartbeatTimeoutSeconds ?? 60);
  const long = proxyActivities<Activities>(opts);
  const quick = proxyActivities<Activities>(quickActivityOptions(RETRY));
  const affinity = input.affinityTimeoutSeconds ?? 10;
  const epochsPerRun = input.epochsPerRun ?? 50;
  const steps = cfg.parameters.steps;
  const progress: AdaProgress = {
    phase: 'validating',
    done: input.carried?.step ?? 0,
    total: steps,
    method: cfg.method,
    output: cfg.output,
    epochs: input.carried?.epochs ?? 0,
    stateUri: input.carried?.stateUri,
    lossPerTask: input.carried?.lastLoss,
    lambda: input.carried?.summary,
  };
  setHandler(adaProgressQuery, () => progress);
  // runs started before resume support have no run record or memo: replay them as they ran
  const resumable = patched('resume-ledger');
  markRunStarted(cfg.method);

  /** An epoch on the worker that ran the last one; on any worker if that one does not pick it up in time. */
  const epoch = async (e: EpochInput, queue: string | undefined): Promise<EpochResult> => {
    if (queue) {
      const affine = proxyActivities<Activities>({
        ...opts,
        taskQueue: queue,
        scheduleToStartTimeout: `${affinity} seconds`,
      });
      try {
        return await affine.adaMergingEpoch(e);
      } catch (err) {
        if (!isScheduleToStart(err)) throw err;
        log.info('the worker holding the run is gone; the epoch goes to any worker', { queue, fromStep: e.fromStep });
      }
    }
    return long.adaMergingEpoch(e);
  };

  /** `parallel: tasks`: the epoch's steps, each K gradient activities on any worker and one reduce. */
  const parallelEpoch = async (e: EpochInput): Promise<EpochResult> => {
    const t0 = Date.now();
    const end = e.fromStep + e.steps;
    let stateUri = e.stateUri;
    let last: ApplyStepResult | undefined;
    let stepSeconds = 0;
    let loadSeconds = 0;
    let hits = true;
    for (let step = e.fromStep; step < end; step++) {
      const grads = await Promise.all(
        e.plan.tasks.map((_, task) => long.adaMergingTaskGradient({ plan: e.plan, stateUri, step, task })),
      );
      last = await quick.adaMergingApplyStep({
        plan: e.plan,
        stateUri,
        fromStep: e.fromStep,
        step,
        end,
        gradUris: grads.map((g) => g.gradUri),
      });
      stateUri = last.stateUri;
      // the critical path's compute: the slowest task's gradient, then the reduce
      stepSeconds += Math.max(...grads.map((g) => g.seconds)) + last.seconds;
      loadSeconds += Math.max(...grads.map((g) => g.loadSeconds));
      hits &&= grads.every((g) => g.cacheHit);
      Object.assign(progress, { done: last.step, stateUri, lossPerTask: last.lossPerTask, lambda: last.summary });
    }
    if (!last?.lossesUri) throw new Error(`AdaMerging: the parallel epoch from step ${e.fromStep} ran no step`);
    return {
      stateUri: last.stateUri,
      step: last.step,
      lossesUri: last.lossesUri,
      lastLoss: last.lossPerTask,
      summary: last.summary,
      queue: '',
      resumedFrom: e.fromStep,
      seconds: (Date.now() - t0) / 1000,
      stepSeconds,
      checkpointSeconds: 0,
      loadSeconds,
      cacheHit: hits,
    };
  };
  const parallel = cfg.parameters.parallel === 'tasks';
  /** The configured epoch length, or under `auto` one sized from the run's timings so far (epoch_size.ts). */
  const epochSteps = (carried: AdaCarried): number => {
    const n = cfg.parameters.steps_per_epoch;
    if (n !== 'auto') return n;
    return autoEpochSteps(
      {
        steps: carried.step,
        epochs: carried.epochs,
        epochWall: carried.epochWall,
        stepSeconds: carried.stepSeconds,
        checkpointSeconds: carried.checkpointSeconds ?? 0,
        loadSeconds: carried.loadSeconds ?? 0,
      },
      parallel,
    );
  };

  let c: AdaCarried | undefined = input.carried;
  let fromStep = c?.step ?? 0;
  /** A resumed run's first epoch starts at this verified checkpoint. */
  let resumeAt: EpochInput['resumeAt'];
  try {
    if (!c) {
      const t0 = Date.now();
      // before any work: where it goes (for `resume` and `gc`, even if the run is stopped at once)
      if (resumable)
        upsertMemo({
          workPrefix: input.resume?.workPrefix ?? workPrefixFor(cfg.output, runId),
          ...(input.resume ? { resumedFrom: input.resume.from } : {}),
        });
      const opened = input.resume ? await quick.openAdaResume(input.resume) : undefined;
      let plan: AdaPlan;
      if (opened?.plan) plan = { ...opened.plan, runId };
      else {
        // `latest_under` task models: the newest checkpoints now (only such configs schedule this activity)
        if (hasLatestUnder(cfg)) cfg = await runConfig(cfg, quick.resolveLatest);
        const planned = await quick.adaMergingPlan(cfg, runId);
        plan = input.resume ? { ...planned, workPrefix: input.resume.workPrefix } : planned;
        if (resumable) await quick.recordAdaRun(plan, cfg);
      }
      const found = opened?.found;
      const timings: Record<string, number> = { validate: (Date.now() - t0) / 1000 };
      if (plan.params.variant === 'ties') {
        progress.phase = 'preparing';
        const t1 = Date.now();
        plan = { ...plan, taskVectors: found?.taskVectors ?? (await long.adaMergingPrepare(plan)) };
        timings.prepare = (Date.now() - t1) / 1000;
      }
      c = { plan, step: 0, epochs: 0, timings, epochWall: 0, stepSeconds: 0, startedAt: t0, lossUris: [] };
      if (found?.stateUri) {
        const { step, epochs, stateUri, lastLoss, summary, lossUris } = found;
        c = { ...c, step, epochs, stateUri, lastLoss, summary, lossUris: [...lossUris] };
        Object.assign(progress, { done: c.step, epochs: c.epochs, stateUri: c.stateUri, lossPerTask: c.lastLoss });
      }
      resumeAt = found?.resumeAt;
      fromStep = c.step;
    }
    progress.phase = 'optimising';
    let epochsHere = 0;
    while (c.step < steps) {
      if (epochsHere >= epochsPerRun || workflowInfo().continueAsNewSuggested) {
        // the server does not carry the memo over: the next run keeps the work prefix (resume, gc) by passing it
        const next = makeContinueAsNewFunc<typeof adaMergingRun>({ memo: workflowInfo().memo });
        return await next({ ...input, config: cfg, carried: c });
      }
      fromStep = c.step;
      const t0 = Date.now();
      const spec: EpochInput = {
        plan: c.plan,
        stateUri: c.stateUri,
        fromStep,
        steps: Math.min(epochSteps(c), steps - fromStep),
        ...(resumeAt ? { resumeAt } : {}),
      };
      // parallel epochs take no resumeAt: they start from the carried state, which a resumed run verified
      const r: EpochResult = parallel ? await parallelEpoch(spec) : await epoch(spec, c.queue);
      c = {
        ...c,
        stateUri: r.stateUri,
        step: r.step,
        epochs: c.epochs + 1,
        queue: r.queue || undefined,
        lastLoss: r.lastLoss,
        summary: r.summary,
        epochWall: c.epochWall + (Date.now() - t0) / 1000,
        stepSeconds: c.stepSeconds + r.stepSeconds,
        checkpointSeconds: (c.checkpointSeconds ?? 0) + (r.checkpointSeconds ?? 0),
        loadSeconds: (c.loadSeconds ?? 0) + (r.loadSeconds ?? 0),
        lossUris: [...c.lossUris, r.lossesUri],
      };
      epochsHere++;
      resumeAt = undefined;
      Object.assign(progress, {
        done: c.step,
        epochs: c.epochs,
        stateUri: c.stateUri,
        lossPerTask: c.lastLoss,
        lambda: c.summary,
      });
    }
    const { plan, stateUri } = c;
    if (!stateUri) throw new Error('AdaMerging: no optimiser state after the epochs');
    const timings: Record<string, number> = { ...c.timings, optimise: c.epochWall };
    progress.phase = 'merging';
    let t0 = Date.now();
    const merged = await long.adaMergingMerge(plan, stateUri);
    timings.merge = (Date.now() - t0) / 1000;
    const labeled = plan.tasks.filter((t) => t.labeled);
    let accuracy: AdaResult['accuracy'];
    if (labeled.length) {
      progress.phase = 'evaluating';
      t0 = Date.now();
      accuracy = await long.evaluateModel({
        model: plan.output,
        tasks: labeled.map((t) => ({ name: t.name, test: t.data, head: t.head })),
      });
      timings.evaluate = (Date.now() - t0) / 1000;
    }
    progress.phase = 'publishing';
    t0 = Date.now();
    const pub = await quick.adaMergingPublish({
      plan,
      stateUri,
      lossUris: c.lossUris,
      output: merged.output,
      files: merged.files,
      accuracy,
      config: cfg,
    });
    timings.publish = (Date.now() - t0) / 1000;
    timings.total = (Date.now() - c.startedAt) / 1000;
    progress.phase = 'completed';
    progress.stateUri = pub.stateUri;
    upsertSearchAttributes([{ key: MergeStatus, value: 'completed' }]);
    return {
      runId,
      method: cfg.method,
      output: merged.output,
      manifestUri: pub.manifestUri,
      tensorCount: plan.tensorCount,
      mergedElements: plan.mergedElements,
      shards: 1,
      warnings: plan.warnings,
      timings,
      steps: c.step,
      epochs: c.epochs,
      ...(input.resume ? { resumedFrom: input.resume.from } : {}),
      stateUri: pub.stateUri,
      lambdaJson: pub.lambdaJson,
      lambdaSafetensors: pub.lambdaSafetensors,
      losses: pub.losses,
      report: pub.report,
      lossPerTask: c.lastLoss ?? [],
      lambda: c.summary ?? [],
      accuracy,
      orchestration: {
        epochWallSeconds: c.epochWall,
        stepSeconds: c.stepSeconds,
        checkpointSeconds: c.checkpointSeconds ?? 0,
        loadSeconds: c.loadSeconds ?? 0,
        schedulingSeconds: c.epochWall - c.stepSeconds - (c.checkpointSeconds ?? 0) - (c.loadSeconds ?? 0),
        overheadFraction: c.epochWall > 0 ? 1 - c.stepSeconds / c.epochWall : 0,
      },
    };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const cancelled = isCancellation(err);
    progress.phase = cancelled ? 'cancelled' : 'failed';
    progress.error = (err as Error).cause ? String(((err as Error).cause as Error).message) : (err as Error).message;
    const carried = c;
    await CancellationScope.nonCancellable(async () => {
      // the state the cancelled epoch wrote last stays in the store: report it
      if (cancelled && carried) {
        const last = await quick.adaMergingLatestState(carried.plan, fromStep, steps).catch(() => undefined);
        if (last) Object.assign(progress, { stateUri: last.stateUri, done: last.step });
      }
      upsertSearchAttributes([{ key: MergeStatus, value: progress.phase }]);
    });
    throw err;
  }
}
