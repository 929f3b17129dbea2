/**
 * FW-Merging as a durable run. θt is a checkpoint URI, never workflow state. Plan (headers only) → the start
 * (TA / TIES over the pool as a dataFreeMerge child workflow, or the pretrained model / a saved merge) copied to
 * <work>/theta/iter-0 → per iteration: one gradient activity per target (fanned out, each writes g_j to the
 * store) → the oracle sharded over the workers (each shard streams its tensors of every candidate and returns
 * dot products and norms) → the pick, here, deterministic → one update activity that writes θt+1 → after the
 * last iteration the model, its evaluation when the data carry labels, and the outputs. Every θt stays in the
 * work prefix until publication: the snapshots a cancel leaves behind. The workflow continues as new every
 * `iterationsPerRun` iterations (or when the server suggests it), carrying URIs, picks and the objective.
 *
 * Resume (`mergeflow resume`): the run records its plan and pins its inputs (run.json) once planned; θ0, each
 * gradient and each completed iteration (its θt+1 and record) go to the ledger of its work prefix, which lies
 * beside the output folder. A resumed run (input.resume) reads them back and carries on after the last completed
 * iteration, reusing the gradients already written for the next one.
 */
import {
  CancellationScope,
  ContinueAsNew,
  defineQuery,
  executeChild,
  isCancellation,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { MergeResult, MergeRunInput } from '../core/pipeline/run_types';
import type {
  FwCandidate,
  FwCarried,
  FwGradientResult,
  FwIterationDraft,
  FwIterationRecord,
  FwPlan,
  FwProgress,
  FwResult,
  FwRunInput,
  FwUpdateResult,
} from '../core/merge/frank_wolfe/run_types';
import { combineShards, pickCandidates } from '../core/merge/frank_wolfe/select';
import { hardCoefficient } from '../core/merge/frank_wolfe/step_size';
import { DATA_DRIVEN_ERRORS, longActivityOptions, quickActivityOptions, retryPolicy } from './activity_options';
import { markRunStarted, MergeStatus } from './search_attributes';

export const fwProgressQuery = defineQuery<FwProgress>('progress');

const RETRY = retryPolicy(DATA_DRIVEN_ERRORS);

export async function frankWolfeRun(input: FwRunInput): Promise<FwResult> {
  const cfg = input.config;
  const runId = workflowInfo().workflowId;
  const hb = input.heartbeatTimeoutSeconds ?? 60;
  const long = proxyActivities<Activities>(longActivityOptions(hb, RETRY));
  const quick = proxyActivities<Activities>(quickActivityOptions(RETRY));
  const iterationsPerRun = input.iterationsPerRun ?? 10;
  const T = cfg.parameters.iterations;
  const progress: FwProgress = {
    phase: 'validating',
    done: input.carried?.iteration ?? 0,
    total: T,
    method: cfg.method,
    output: cfg.output,
    thetaUri: input.carried?.theta,
    objective: input.carried?.records.map((r) => r.objective),
  };
  setHandler(fwProgressQuery, () => progress);
  // runs started before resume support have no run record or memo: replay them as they ran
  const resumable = patched('fw-resume-ledger');
  markRunStarted(cfg.method);

  let c: FwCarried | undefined = input.carried;
  /** A resumed run's gradients of its first iteration, already written by the run it resumes. */
  let reusedGradients: (FwGradientResult | null)[] = [];
  try {
    if (!c) {
      const t0 = Date.now();
      const opened = input.resume ? await quick.openFwResume(input.resume) : undefined;
      let plan: FwPlan;
      if (opened?.plan) plan = { ...opened.plan, runId };
      else plan = await quick.fwPlan(cfg, runId, input.resume?.workPrefix);
      if (resumable) {
        // before any work: where it goes (for `resume` and `gc`, even if the run is stopped at once)
        upsertMemo({ workPrefix: plan.workPrefix, ...(input.resume ? { resumedFrom: input.resume.from } : {}) });
        if (!opened?.plan) await quick.recordFwRun(plan, cfg);
      }
      const found = opened?.found;
      const timings: Record<string, number> = { validate: (Date.now() - t0) / 1000 };
      progress.phase = 'starting';
      const t1 = Date.now();
      let startUri = found?.startUri;
      if (!startUri) {
        let from = plan.start === 'pretrained' ? plan.pretrained : plan.start;
        if (plan.startMerge) {
          const start = await executeChild('dataFreeMerge', {
            workflowId: `${runId}-start`,
            args: [{ config: plan.startMerge, heartbeatTimeoutSeconds: hb } satisfies MergeRunInput],
          });
          from = (start as MergeResult).output.uri;
        }
        startUri = await quick.fwCopyStart(plan, from);
      }
      timings.start = (Date.now() - t1) / 1000;
      const records = found?.records ?? [];
      const theta = found?.theta ?? startUri;
      c = { plan, iteration: records.length, theta, startUri, records, timings, startedAt: t0 };
      if (input.resume) {
        reusedGradients = found?.gradients ?? [];
        c.reused = {
          start: found?.startUri ? 1 : 0,
          iterations: records.length,
          gradients: reusedGradients.filter((g) => g !== null).length,
        };
      }
      Object.assign(progress, { done: c.iteration, thetaUri: theta, objective: records.map((r) => r.objective) });
    }
    const { plan } = c;
    const p = plan.params;
    const candidates: FwCandidate[] =
      p.variant === 'hard' ? [...plan.pool, { name: 'start', uri: c.startUri }] : [...plan.pool];
    const targets = plan.targets.map((t) => t.name);
    let here = 0;
    while (c.iteration < T) {
      if (here >= iterationsPerRun || workflowInfo().continueAsNewSuggested) {
        // the server does not carry the memo over: the next run keeps the work prefix (resume, gc) by passing it
        const next = makeContinueAsNewFunc<typeof frankWolfeRun>({ memo: workflowInfo().memo });
        return await next({ ...input, carried: c });
      }
      const t: number = c.iteration;
      const tIter = Date.now();
      progress.phase = `iteration ${t}: gradients`;
      const tGrad = Date.now();
      const grads = await Promise.all(
        plan.targets.map(
          (_, j) => reusedGradients[j] ?? long.fwGradient({ plan, iteration: t, theta: c!.theta, target: j }),
        ),
      );
      reusedGradients = [];
      const gradWall = (Date.now() - tGrad) / 1000;
      progress.phase = `iteration ${t}: oracle`;
      const tOracle = Date.now();
      const shards = await Promise.all(
        plan.shards.map((_, s) =>
          long.fwOracleShard({
            plan,
            iteration: t,
            shard: s,
            grads: grads.map((g) => g.uri),
            mode: p.variant === 'hard' ? 'sum' : 'each',
            candidates,
          }),
        ),
      );
      const oracleWall = (Date.now() - tOracle) / 1000;
      const { picks, record } = pickCandidates(
        p,
        targets,
        combineShards(
          plan.tensors,
          shards.map((s) => s.scores),
        ),
      );
      const lossPerTarget = grads.map((g) => g.loss);
      const draft: FwIterationDraft = {
        iteration: t,
        lossPerTarget,
        objective: lossPerTarget.reduce((a, b) => a + b, 0),
        picks: record,
        ...(p.variant === 'hard' ? { a: hardCoefficient(t, p.step_size, p.scaling) } : {}),
        seconds: {
          gradient: gradWall,
          oracle: oracleWall,
          activities: [...grads, ...shards].reduce((a, x) => a + x.seconds, 0),
        },
      };
      progress.phase = `iteration ${t}: update`;
      const tUpdate = Date.now();
      const up: FwUpdateResult = await long.fwUpdate({
        plan,
        iteration: t,
        theta: c.theta,
        candidates,
        picks,
        commit: draft,
      });
      const updateWall = (Date.now() - tUpdate) / 1000;
      const rec: FwIterationRecord = {
        ...draft,
        ...(p.variant === 'hard' ? {} : { softLastLoss: up.softLastLoss }),
        seconds: {
          gradient: gradWall,
          oracle: oracleWall,
          update: updateWall,
          wall: (Date.now() - tIter) / 1000,
          activities: draft.seconds.activities + up.seconds,
        },
      };
      c = { ...c, iteration: t + 1, theta: up.theta, records: [...c.records, rec] };
      here++;
      Object.assign(progress, {
        done: c.iteration,
        thetaUri: c.theta,
        objective: c.records.map((r) => r.objective),
        lastPicks: record,
      });
    }

    const timings: Record<string, number> = { ...c.timings };
    timings.iterations = c.records.reduce((a, r) => a + r.seconds.wall, 0);
    progress.phase = 'merging';
    let t0 = Date.now();
    const merged = await long.fwWriteModel(plan, c.theta);
    timings.merge = (Date.now() - t0) / 1000;
    const labeled = plan.targets.filter((t) => t.labeled && t.data);
    let accuracy: FwResult['accuracy'];
    if (labeled.length) {
      progress.phase = 'evaluating';
      t0 = Date.now();
      accuracy = await long.evaluateModel({
        model: plan.output,
        tasks: labeled.map((t) => ({ name: t.name, test: t.data!, head: t.head })),
      });
      timings.evaluate = (Date.now() - t0) / 1000;
    }
    progress.phase = 'publishing';
    t0 = Date.now();
    const pub = await quick.fwPublish({
      plan,
      records: c.records,
      output: merged.output,
      files: merged.files,
      accuracy,
      config: cfg,
    });
    timings.publish = (Date.now() - t0) / 1000;
    timings.total = (Date.now() - c.startedAt) / 1000;
    progress.phase = 'completed';
    upsertSearchAttributes([{ key: MergeStatus, value: 'completed' }]);
    const sum = (f: (r: FwIterationRecord) => number) => c!.records.reduce((a, r) => a + f(r), 0);
    const split = {
      gradient: sum((r) => r.seconds.gradient),
      oracle: sum((r) => r.seconds.oracle),
      update: sum((r) => r.seconds.update),
      wall: sum((r) => r.seconds.wall),
      activities: sum((r) => r.seconds.activities ?? 0),
      orchestration: 0,
    };
    split.orchestration = split.wall - split.gradient - split.oracle - split.update;
    return {
      runId,
      method: cfg.method,
      output: merged.output,
      manifestUri: pub.manifestUri,
      tensorCount: plan.tensorCount,
      mergedElements: plan.mergedElements,
      shards: plan.shards.length,
      warnings: plan.warnings,
      timings,
      iterations: c.iteration,
      variant: p.variant,
      oracle: p.oracle,
      objective: c.records.map((r) => r.objective),
      selections: pub.selections,
      objectivePng: pub.objectivePng,
      selectionPng: pub.selectionPng,
      accuracy,
      split,
      ...(input.resume ? { resumedFrom: input.resume.from, reused: c.reused } : {}),
    };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const cancelled = isCancellation(err);
    progress.phase = cancelled ? 'cancelled' : 'failed';
    progress.error = (err as Error).cause ? String(((err as Error).cause as Error).message) : (err as Error).message;
    await CancellationScope.nonCancellable(async () => {
      upsertSearchAttributes([{ key: MergeStatus, value: progress.phase }]);
    });
    throw err;
  }
}
