/**
 * FW-Merging as a durable run. θt is a checkpoint URI, never workflow state. Plan (headers only) → the start
 * (TA / TIES over the pool as a dataFreeMerge child workflow, or the pretrained model / a saved merge) copied to
 * <work>/theta/iter-0 → per iteration: one gradient activity per target (fanned out, each writes g_j to the
 * store) → the oracle sharded over the workers (each shard streams its tensors of every candidate and returns
 * dot products and norms) → the pick, here, deterministic → one update activity that writes θt+1 → after the
 * last iteration the model, its evaluation when the data carry labels, and the outputs. Every θt stays in the
 * work prefix until publication: the snapshots a cancel leaves behind. The workflow continues as new every
 * `iterationsPerRun` iterations (or when the server suggests it), carrying URIs, picks and the objective.
 */
import {
  CancellationScope,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { MergeResult, MergeRunInput } from '../core/pipeline/run_types';
import type {
  FwCandidate,
  FwCarried,
  FwIterationRecord,
  FwProgress,
  FwResult,
  FwRunInput,
  FwUpdateResult,
} from '../core/merge/frank_wolfe/run_types';
import { combineShards, pickCandidates } from '../core/merge/frank_wolfe/select';
import { hardCoefficient } from '../core/merge/frank_wolfe/step_size';
import { DATA_DRIVEN_ERRORS, longActivityOptions, retryPolicy } from './activity_options';
import { MergeMethod, MergeStatus } from './search_attributes';

export const fwProgressQuery = defineQuery<FwProgress>('progress');

const RETRY = retryPolicy(DATA_DRIVEN_ERRORS);

export async function frankWolfeRun(input: FwRunInput): Promise<FwResult> {
  const cfg = input.config;
  const runId = workflowInfo().workflowId;
  const hb = input.heartbeatTimeoutSeconds ?? 60;
  const long = proxyActivities<Activities>(longActivityOptions(hb, RETRY));
  const quick = proxyActivities<Activities>({ startToCloseTimeout: '30 minutes', retry: RETRY });
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
  upsertSearchAttributes([
    { key: MergeStatus, value: 'running' },
    { key: MergeMethod, value: cfg.method },
  ]);

  let c: FwCarried | undefined = input.carried;
  try {
    if (!c) {
      const t0 = Date.now();
      const plan = await quick.fwPlan(cfg, runId);
      const timings: Record<string, number> = { validate: (Date.now() - t0) / 1000 };
      progress.phase = 'starting';
      const t1 = Date.now();
      let from = plan.start === 'pretrained' ? plan.pretrained : plan.start;
      if (plan.startMerge) {
        const start = await executeChild('dataFreeMerge', {
          workflowId: `${runId}-start`,
          args: [{ config: plan.startMerge, heartbeatTimeoutSeconds: hb } satisfies MergeRunInput],
        });
        from = (start as MergeResult).output.uri;
      }
      const theta = await quick.fwCopyStart(plan, from);
      timings.start = (Date.now() - t1) / 1000;
      c = { plan, iteration: 0, theta, startUri: theta, records: [], timings, startedAt: t0 };
      progress.thetaUri = theta;
    }
    const { plan } = c;
    const p = plan.params;
    const candidates: FwCandidate[] =
      p.variant === 'hard' ? [...plan.pool, { name: 'start', uri: c.startUri }] : [...plan.pool];
    const targets = plan.targets.map((t) => t.name);
    let here = 0;
    while (c.iteration < T) {
      if (here >= iterationsPerRun || workflowInfo().continueAsNewSuggested)
        return await continueAsNew<typeof frankWolfeRun>({ ...input, carried: c });
      const t: number = c.iteration;
      const tIter = Date.now();
      progress.phase = `iteration ${t}: gradients`;
      const tGrad = Date.now();
      const grads = await Promise.all(
        plan.targets.map((_, j) => long.fwGradient({ plan, iteration: t, theta: c!.theta, target: j })),
      );
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
      progress.phase = `iteration ${t}: update`;
      const tUpdate = Date.now();
      const up: FwUpdateResult = await long.fwUpdate({ plan, iteration: t, theta: c.theta, candidates, picks });
      const updateWall = (Date.now() - tUpdate) / 1000;
      const lossPerTarget = grads.map((g) => g.loss);
      const rec: FwIterationRecord = {
        iteration: t,
        lossPerTarget,
        objective: lossPerTarget.reduce((a, b) => a + b, 0),
        picks: record,
        ...(p.variant === 'hard'
          ? { a: hardCoefficient(t, p.step_size, p.scaling) }
          : { softLastLoss: up.softLastLoss }),
        seconds: {
          gradient: gradWall,
          oracle: oracleWall,
          update: updateWall,
          wall: (Date.now() - tIter) / 1000,
          activities: [...grads, ...shards, up].reduce((a, x) => a + x.seconds, 0),
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
