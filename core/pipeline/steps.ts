/**
 * The core functions behind each step of a merge, with optional progress: activities add heartbeats to these.
 * Each unit's result also goes to the run's ledger once its object is committed, so a resumed run can reuse it.
 */
import { commitKey, MergeSteps } from './driver';
import { planMerge } from './plan';
import { publishMerge } from './publish';
import { combineReads } from './input_digest';
import { mapShard, reducePass } from './passes';
import { writeCoefficients } from './coefficients';
import { mergeShard } from './merge_shard';
import { Progress } from './inputs';
import { recordCommitted } from '../resume/ledger';

/** `progress(step)` gives the progress callback of a step (every step reports: any may outlast a heartbeat), or undefined. */
export function coreSteps(progress: (step: string) => Progress | undefined = () => undefined): MergeSteps {
  return {
    planMerge: (config, runId) => planMerge(config, runId, progress('plan')),
    async mapShard(plan, pass, shard, state) {
      const uri = await mapShard(plan, pass, shard, state, progress(pass));
      await recordCommitted(plan.workPrefix, commitKey.pass(pass, shard), uri, uri);
      return uri;
    },
    reducePass: (plan, pass, uris, state) => reducePass(plan, pass, uris, state, progress(`${pass} reduce`)),
    async writeCoefficients(plan, state) {
      const uri = await writeCoefficients(plan, state);
      await recordCommitted(plan.workPrefix, commitKey.coefficients(), uri, uri);
      return uri;
    },
    async mergeShard(plan, shard, state, coefficients) {
      const part = await mergeShard(plan, shard, state, coefficients, progress('merge'));
      await recordCommitted(plan.workPrefix, commitKey.part(shard), part, part);
      return part;
    },
    publishMerge: (plan, parts, config) =>
      publishMerge(plan, parts, combineReads(plan, parts), config, progress('publish')),
  };
}
