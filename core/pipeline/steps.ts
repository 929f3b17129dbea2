/** The core functions behind each step of a merge, with optional progress: activities add heartbeats to these. */
import { MergeSteps } from './driver';
import { planMerge } from './plan';
import { hashCheckpoint, publishMerge } from './publish';
import { mapShard, reducePass } from './passes';
import { writeCoefficients } from './coefficients';
import { mergeShard } from './merge_shard';
import { Progress } from './inputs';

/** `progress(step)` gives the progress callback of a step (every step reports: any may outlast a heartbeat), or undefined. */
export function coreSteps(progress: (step: string) => Progress | undefined = () => undefined): MergeSteps {
  return {
    planMerge: (config, runId) => planMerge(config, runId, progress('plan')),
    hashCheckpoint: (uri) => hashCheckpoint(uri, progress('hash')),
    mapShard: (plan, pass, shard, state) => mapShard(plan, pass, shard, state, progress(pass)),
    reducePass: (plan, pass, uris, state) => reducePass(plan, pass, uris, state, progress(`${pass} reduce`)),
    writeCoefficients,
    mergeShard: (plan, shard, state, coefficients) => mergeShard(plan, shard, state, coefficients, progress('merge')),
    publishMerge: (plan, parts, hashes, config) => publishMerge(plan, parts, hashes, config, progress('publish')),
  };
}
