/**
 * Frank-Wolfe's activities: plan (headers only), copy the start into the work prefix, one target's gradient, one
 * oracle shard, the update, the merged model and the publication. Thin: the work is core/merge/frank_wolfe;
 * these add heartbeats and cancellation.
 */
import { Context, log } from '@temporalio/activity';
import type { FrankWolfeConfig } from '../core/config/schema';
import { ensureBackend } from '../core/eval/evaluate';
import { planFrankWolfe } from '../core/merge/frank_wolfe/plan';
import { FwPublished, FwPublishInput, publishFrankWolfe, writeMergedModel } from '../core/merge/frank_wolfe/publish';
import type {
  FwGradientInput,
  FwGradientResult,
  FwOracleInput,
  FwOracleResult,
  FwPlan,
  FwUpdateInput,
  FwUpdateResult,
} from '../core/merge/frank_wolfe/run_types';
import {
  copyStart,
  gradientStep,
  hardUpdateStep,
  oracleShardStep,
  softUpdateStep,
} from '../core/merge/frank_wolfe/steps';
import type { Committed } from '../core/store/types';

function hooks() {
  const ctx = Context.current();
  return {
    tick: (note: string) => ctx.heartbeat(note),
    stopRequested: () => ctx.cancellationSignal.aborted,
  };
}

export function createFrankWolfeActivities() {
  return {
    async fwPlan(config: FrankWolfeConfig, runId: string, workPrefix?: string): Promise<FwPlan> {
      const plan = await planFrankWolfe(config, runId, workPrefix);
      log.info('planned Frank-Wolfe', { runId, pool: plan.pool.length, targets: plan.targets.length });
      return plan;
    },

    async fwCopyStart(plan: FwPlan, from: string): Promise<string> {
      return copyStart(plan, from);
    },

    async fwGradient(input: FwGradientInput): Promise<FwGradientResult> {
      await ensureBackend();
      Context.current().heartbeat('gradient');
      return gradientStep(input);
    },

    async fwOracleShard(input: FwOracleInput): Promise<FwOracleResult> {
      const r = await oracleShardStep(input, hooks());
      log.info('FW oracle shard', {
        iteration: input.iteration,
        shard: input.shard,
        reads: r.reads,
        seconds: r.seconds,
        peakRssMiB: Math.round(r.peakRssBytes / 2 ** 20),
      });
      return r;
    },

    async fwUpdate(input: FwUpdateInput): Promise<FwUpdateResult> {
      if (input.plan.params.variant === 'hard') return hardUpdateStep(input);
      await ensureBackend();
      const ctx = Context.current();
      try {
        return await softUpdateStep(input, hooks());
      } catch (e) {
        // stopped after an Adam step because the run was cancelled: report the cancellation itself
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? e;
        throw e;
      }
    },

    async fwWriteModel(plan: FwPlan, theta: string): Promise<{ output: Committed; files: string[] }> {
      return writeMergedModel(plan, theta);
    },

    async fwPublish(input: FwPublishInput): Promise<FwPublished> {
      return publishFrankWolfe(input);
    },
  };
}

export type FrankWolfeActivities = ReturnType<typeof createFrankWolfeActivities>;
