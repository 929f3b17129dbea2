/**
 * Run a data-free merge in this process, with the same steps the workflow runs (one shard at a time).
 * The reference executor for tests and benchmarks; production runs go through Temporal.
 */
import { MergeConfig } from '../config/schema';
import { GlobalStats } from '../merge/method';
import { Committed } from '../store/types';
import { hashCheckpoint, publishMerge } from './publish';
import { planMerge } from './plan';
import { histogramShard, reduceHigh, reduceLow, signShard } from './ties_passes';
import { mergeShard } from './merge_shard';

export async function runLocalMerge(
  config: MergeConfig,
  runId = 'local',
): Promise<{ output: Committed; manifestUri: string; global: GlobalStats }> {
  const plan = await planMerge(config, runId);
  const shards = plan.shards.map((s) => s.index);
  const global: GlobalStats = {};
  if (plan.passes.includes('magnitude')) {
    const keep = Number(plan.params.keep);
    const highUris: string[] = [];
    for (const s of shards) highUris.push(await histogramShard(plan, s, 'high', undefined));
    const high = await reduceHigh(plan, highUris, keep);
    const lowUris: string[] = [];
    for (const s of shards) lowUris.push(await histogramShard(plan, s, 'low', high.highs));
    global.thresholds = await reduceLow(plan, lowUris, high);
  }
  if (plan.passes.includes('sign')) {
    let sum = 0;
    for (const s of shards) sum += await signShard(plan, s, global.thresholds!);
    global.majoritySign = Math.sign(sum);
  }
  const parts: Committed[] = [];
  for (const s of shards) parts.push(await mergeShard(plan, s, global));
  const hashes = {
    base: await hashCheckpoint(plan.base.uri),
    models: Object.fromEntries(
      await Promise.all(plan.models.map(async (m) => [m.name, await hashCheckpoint(m.uri)] as const)),
    ),
  };
  const { output, manifestUri } = await publishMerge(plan, parts, hashes, config);
  return { output, manifestUri, global };
}
