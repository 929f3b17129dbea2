/**
 * Run a merge in this process with the same driver the workflow uses, one shard at a time.
 * The reference executor for tests, benchmarks and reports; production runs go through Temporal.
 */
import { MergeConfig } from '../config/schema';
import { PassState } from '../merge/method';
import { Committed } from '../store/types';
import { driveMerge } from './driver';
import { coreSteps } from './steps';

export async function runLocalMerge(
  config: MergeConfig,
  runId = 'local',
): Promise<{ output: Committed; files?: Committed[]; manifestUri: string; global: PassState }> {
  const sequential = async <T>(work: readonly (() => Promise<T>)[]): Promise<T[]> => {
    const out: T[] = [];
    for (const w of work) out.push(await w());
    return out;
  };
  const r = await driveMerge(config, runId, { ...coreSteps(), all: sequential });
  return { output: r.output, ...(r.files ? { files: r.files } : {}), manifestUri: r.manifestUri, global: r.state };
}
