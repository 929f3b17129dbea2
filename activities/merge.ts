/**
 * Thin activity wrappers over core/pipeline: the core function of each merge step, with heartbeats.
 * Each returns URIs and scalars, never tensors.
 */
import { log } from '@temporalio/activity';
import type { MergeConfig } from '../core/config/schema';
import * as pipeline from '../core/pipeline';
import { heartbeatProgress, withFinalErrors } from './heartbeat';

export function createMergeActivities() {
  const steps = pipeline.coreSteps((step) => heartbeatProgress(step));
  return withFinalErrors({
    ...steps,

    async planMerge(config: MergeConfig, runId: string): Promise<pipeline.MergePlan> {
      const plan = await steps.planMerge(config, runId);
      log.info('planned merge', {
        runId,
        tensors: plan.tensorCount,
        shards: plan.shards.length,
        bytes: plan.outputBytes,
        passes: plan.passes.map((p) => p.name),
      });
      return plan;
    },

    async clearWork(plan: pipeline.MergePlan): Promise<void> {
      await pipeline.clearWork(plan, heartbeatProgress('clear'));
    },
  });
}

export type MergeActivities = ReturnType<typeof createMergeActivities>;
