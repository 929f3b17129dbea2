/** The core functions behind each step of a merge, with optional progress: activities add heartbeats to these. */
import { MergeSteps } from './driver';
import { planMerge } from './plan';
import { publishMerge } from './publish';
import { combineReads } from './input_digest';
import { mapShard, reducePass } from './passes';
import { writeCoefficients } from './coefficients';
import { mergeShard } from './merge_shard';
import { Progress } from './inputs';

/** `progress(step)` gives the progress callback of a long step (map, merge, publish), or undefined. */
export function coreSteps(progress: (step: string) => Progress | undefined = () => undefined): MergeSteps {
  return {
    planMerge,
    mapShard: (plan, pass, shard, state) => mapShard(plan, pass, shard, state, progress(pass)),
    reducePass,
    writeCoefficients,
    mergeShard: (plan, shard, state, coefficients) => mergeShard(plan, shard, state, coefficients, progress('merge')),
    publishMerge: (plan, parts, config) =>
      publishMerge(plan, parts, combineReads(plan, parts), config, progress('publish')),
  };
}
