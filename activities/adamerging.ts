/**
 * AdaMerging's activities: validate (headers only), prepare AdaMerging++'s task vectors, run an epoch of Adam
 * steps, merge with the learned λ, publish. Thin: the work is core/merge/adamerging; these add heartbeats,
 * cancellation, resumption from the last checkpoint, and the worker's session cache.
 *
 * The cache is per worker process: θ0, the task vectors, heads and datasets of the last run it served, keyed by
 * content (URI + ETag of every input). The epoch reports `queue`, this worker's own task queue, so the workflow
 * sends the run's next epoch here.
 */
import { Context, log } from '@temporalio/activity';
import type { AdamergingConfig } from '../core/config/schema';
import { ensureBackend } from '../core/eval/evaluate';
import { EpochStoppedError, latestCheckpoint, runEpoch } from '../core/merge/adamerging/epoch';
import { mergeWithTable, writeLambdaTable } from '../core/merge/adamerging/final_merge';
import { AdaPublished, AdaPublishInput, publishAdaMerging } from '../core/merge/adamerging/publish';
import { applyTaskGradients, computeTaskGradient } from '../core/merge/adamerging/parallel';
import type {
  AdaPlan,
  ApplyStepInput,
  ApplyStepResult,
  EpochHeartbeat,
  EpochInput,
  EpochResult,
  TaskGradientInput,
  TaskGradientResult,
} from '../core/merge/adamerging/run_types';
import {
  AdaSession,
  disposeSession,
  openSession,
  prepareTiesVectors,
  sessionKey,
} from '../core/merge/adamerging/session';
import { planAdaMerging } from '../core/merge/adamerging/validate';
import type { Committed } from '../core/store/types';
import { adaKeys, StateRecord } from '../core/merge/adamerging/resume';
import { recordCommitted } from '../core/resume/ledger';

/** One session at a time: a worker serves one AdaMerging run's epochs (the GPU or CPU is busy anyway). */
const sessions = new Map<string, Promise<AdaSession>>();

/**
 * `parallel: tasks` asks for the session K times a step; its content key (a stat of every input) is taken once
 * per run and worker, and again only when the session was dropped.
 */
const runKeys = new Map<string, string>();
const runOf = (plan: AdaPlan) => `${plan.runId}|${plan.workPrefix}|${(plan.taskVectors ?? []).join(',')}`;

async function session(plan: AdaPlan, opts: { keyOnce?: boolean } = {}): Promise<{ s: AdaSession; hit: boolean }> {
  const known = opts.keyOnce ? runKeys.get(runOf(plan)) : undefined;
  const key = known && sessions.has(known) ? known : await sessionKey(plan);
  if (opts.keyOnce) {
    runKeys.clear();
    runKeys.set(runOf(plan), key);
  }
  const cached = sessions.get(key);
  if (cached) return { s: await cached, hit: true };
  for (const [k, old] of sessions) {
    sessions.delete(k);
    await old.then(disposeSession, () => undefined);
  }
  const opening = openSession(plan, key);
  sessions.set(key, opening);
  opening.catch(() => sessions.delete(key));
  return { s: await opening, hit: false };
}

/** For tests and shutdown: drop every cached session. */
export async function clearAdaMergingCache(): Promise<void> {
  for (const [k, s] of sessions) {
    sessions.delete(k);
    await s.then(disposeSession, () => undefined);
  }
}

export function createAdaMergingActivities(opts: { workerQueue?: string } = {}) {
  return {
    async adaMergingPlan(config: AdamergingConfig, runId: string): Promise<AdaPlan> {
      const plan = await planAdaMerging(config, runId);
      log.info('planned AdaMerging', { runId, tasks: plan.tasks.length, lambda: plan.lambdaSize });
      return plan;
    },

    async adaMergingPrepare(plan: AdaPlan): Promise<string[]> {
      await ensureBackend();
      const uris = await prepareTiesVectors(plan);
      for (let k = 0; k < uris.length; k++)
        await recordCommitted(plan.workPrefix, adaKeys.taskVector(k), uris[k], uris[k]);
      return uris;
    },

    async adaMergingEpoch(input: EpochInput): Promise<EpochResult> {
      const t0 = performance.now();
      const ctx = Context.current();
      const { plan, fromStep, steps } = input;
      const end = fromStep + steps;
      // resume from the later of the last heartbeat's checkpoint and the last one in the store (a retry on
      // another queue starts without heartbeat details)
      const hb = ctx.info.heartbeatDetails as EpochHeartbeat | undefined;
      // a resumed run's first epoch starts at the checkpoint its ledger verified
      let resume = input.resumeAt ?? (await latestCheckpoint(plan, fromStep, end));
      if (hb?.stateUri && hb.step > fromStep && hb.step <= end && (!resume || hb.step > resume.step))
        resume = { step: hb.step, stateUri: hb.stateUri };
      await ensureBackend();
      const tLoad = performance.now();
      const { s, hit } = await session(plan);
      const loadSeconds = (performance.now() - tLoad) / 1000;
      let last: EpochHeartbeat = resume ?? { step: fromStep, stateUri: input.stateUri };
      ctx.heartbeat(last);
      try {
        const r = await runEpoch(s, plan, input, resume, {
          onStep: async (step, checkpoint) => {
            if (checkpoint) {
              const rec: StateRecord = { step, fromStep };
              await recordCommitted(plan.workPrefix, adaKeys.state(step), rec, checkpoint);
              last = { step, stateUri: checkpoint };
            }
            ctx.heartbeat(last);
          },
          stopRequested: () => ctx.cancellationSignal.aborted,
        });
        await recordCommitted(plan.workPrefix, adaKeys.losses(fromStep), r.lossesUri, r.lossesUri);
        const end: StateRecord = {
          step: r.step,
          fromStep,
          end: { lossesUri: r.lossesUri, lastLoss: r.lastLoss, summary: r.summary },
        };
        await recordCommitted(plan.workPrefix, adaKeys.state(r.step), end, r.stateUri);
        const seconds = (performance.now() - t0) / 1000;
        log.info('AdaMerging epoch', { fromStep, step: r.step, resumedFrom: r.resumedFrom, cacheHit: hit, seconds });
        return { ...r, queue: opts.workerQueue ?? ctx.info.taskQueue, seconds, cacheHit: hit, loadSeconds };
      } catch (e) {
        if (e instanceof EpochStoppedError) {
          ctx.heartbeat({ step: e.step, stateUri: e.stateUri });
          throw ctx.cancellationSignal.reason ?? e;
        }
        throw e;
      }
    },

    /** `parallel: tasks`: one task's gradient at one step (on any worker; the session cache saves the load). */
    async adaMergingTaskGradient(input: TaskGradientInput): Promise<TaskGradientResult> {
      await ensureBackend();
      const tLoad = performance.now();
      const { s, hit } = await session(input.plan, { keyOnce: true });
      Context.current().heartbeat({ step: input.step, task: input.task });
      const t0 = performance.now();
      const r = await computeTaskGradient(s, input.plan, input);
      return { ...r, seconds: (performance.now() - t0) / 1000, loadSeconds: (t0 - tLoad) / 1000, cacheHit: hit };
    },

    /** `parallel: tasks`: the reduce of one step (sum in task order, Adam, state). Needs no model. */
    async adaMergingApplyStep(input: ApplyStepInput): Promise<ApplyStepResult> {
      const t0 = performance.now();
      const r = await applyTaskGradients(input);
      return { ...r, seconds: (performance.now() - t0) / 1000 };
    },

    /** The latest checkpoint of the epoch from `fromStep` (after a cancel: the run's last usable state). */
    async adaMergingLatestState(plan: AdaPlan, fromStep: number, toStep: number) {
      return (await latestCheckpoint(plan, fromStep, toStep)) ?? null;
    },

    async adaMergingMerge(plan: AdaPlan, stateUri: string): Promise<{ output: Committed; files: string[] }> {
      const table = await writeLambdaTable(plan, stateUri);
      Context.current().heartbeat({ step: 'merge' });
      return mergeWithTable(plan, table);
    },

    async adaMergingPublish(input: AdaPublishInput): Promise<AdaPublished> {
      return publishAdaMerging(input);
    },
  };
}

export type AdaMergingActivities = ReturnType<typeof createAdaMergingActivities>;
