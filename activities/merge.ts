/** Thin activity wrappers over core/pipeline: each returns URIs and scalars, never tensors. */
import { log } from '@temporalio/activity';
import type { MergeConfig } from '../core/config/schema';
import type { GlobalStats } from '../core/merge/method';
import * as pipeline from '../core/pipeline';
import type { Committed } from '../core/store/types';
import { heartbeatProgress } from './heartbeat';

export function createMergeActivities() {
  return {
    async planMerge(config: MergeConfig, runId: string): Promise<pipeline.MergePlan> {
      const plan = await pipeline.planMerge(config, runId);
      log.info('planned merge', {
        runId,
        tensors: plan.tensorCount,
        shards: plan.shards.length,
        bytes: plan.outputBytes,
      });
      return plan;
    },

    async hashCheckpoint(uri: string): Promise<pipeline.FileHash[]> {
      return pipeline.hashCheckpoint(uri);
    },

    async histogramShard(
      plan: pipeline.MergePlan,
      shard: number,
      level: 'high' | 'low',
      highs?: number[],
    ): Promise<string> {
      return pipeline.histogramShard(plan, shard, level, highs, heartbeatProgress(`histogram-${level}`));
    },

    async reduceHigh(plan: pipeline.MergePlan, uris: string[], keep: number): Promise<pipeline.HighBuckets> {
      return pipeline.reduceHigh(plan, uris, keep);
    },

    async reduceLow(plan: pipeline.MergePlan, uris: string[], high: pipeline.HighBuckets): Promise<number[]> {
      return pipeline.reduceLow(plan, uris, high);
    },

    async signShard(plan: pipeline.MergePlan, shard: number, thresholds: number[]): Promise<number> {
      return pipeline.signShard(plan, shard, thresholds, heartbeatProgress('sign'));
    },

    async mergeShard(plan: pipeline.MergePlan, shard: number, global: GlobalStats): Promise<Committed> {
      return pipeline.mergeShard(plan, shard, global, heartbeatProgress('merge'));
    },

    async publishMerge(
      plan: pipeline.MergePlan,
      parts: Committed[],
      hashes: { base: pipeline.FileHash[]; models: Record<string, pipeline.FileHash[]> },
      config: MergeConfig,
    ): Promise<{ output: Committed; manifestUri: string }> {
      return pipeline.publishMerge(plan, parts, hashes, config, heartbeatProgress('publish'));
    },

    async clearWork(plan: pipeline.MergePlan): Promise<void> {
      await pipeline.clearWork(plan);
    },
  };
}

export type MergeActivities = ReturnType<typeof createMergeActivities>;
