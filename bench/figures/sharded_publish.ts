/**
 * Publishing a Task Arithmetic merge to the local S3 server as shard files + index (max_shard_size) against
 * publishing the same parts as one model.safetensors: the same plan is merged once per layout, then only the
 * publish step is timed, the two layouts alternating a few times; figures are medians. Both compose their
 * files from the shard parts with server-side copies; each file also sends its header and the stretch that fills
 * S3's 5 MiB minimum part through the worker, so files of a few MiB are mostly sent, files of GBs mostly copied.
 */
import { mergeConfigSchema } from '../../core/config/schema';
import { coreSteps, ShardPart } from '../../core/pipeline';
import { writeSyntheticCheckpoints } from '../../core/synthetic';
import { benchPrefix, median, s3Unavailable, useStack } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';

async function publishSeconds(
  base: string,
  models: { name: string; checkpoint: string }[],
  output: string,
  maxShardSize: string | undefined,
): Promise<{ seconds: number; files: number; bytes: number }> {
  const config = mergeConfigSchema.parse({
    method: 'task_arithmetic',
    base,
    models,
    output,
    ...(maxShardSize ? { max_shard_size: maxShardSize } : {}),
  });
  const steps = coreSteps();
  const plan = await steps.planMerge(config, `bench-${Date.now().toString(36)}`);
  const coefficients = await steps.writeCoefficients(plan, {});
  const parts: ShardPart[] = [];
  for (const s of plan.shards) parts.push(await steps.mergeShard(plan, s.index, {}, coefficients));
  const t = performance.now();
  const r = await steps.publishMerge(plan, parts, config);
  return { seconds: (performance.now() - t) / 1000, files: r.files ? r.files.length - 1 : 1, bytes: plan.outputBytes };
}

export const bench: Bench = {
  name: 'sharded_publish',
  description: 'S3 publish of a Task Arithmetic merge as shard files + index vs as one model.safetensors (s)',
  unavailable: s3Unavailable,
  async run({ quick, log }): Promise<Figure[]> {
    useStack();
    // full: 8 layers of 2048² F32 (16 MiB each) + a 16 MiB BF16 embedding, 144 MiB, in 32 MB files
    const o = quick
      ? { dim: 1024, layers: 4, limit: '8MB', reps: 1 }
      : { dim: 2048, layers: 8, limit: '32MB', reps: 3 };
    const prefix = benchPrefix('sharded-publish');
    const ck = await writeSyntheticCheckpoints(`${prefix}/in`, { seed: 1, models: 2, dim: o.dim, layers: o.layers });
    const single: number[] = [];
    const sharded: number[] = [];
    let files = 0;
    let bytes = 0;
    for (let i = 0; i < o.reps; i++) {
      const a = await publishSeconds(ck.base, ck.models, `${prefix}/single-${i}`, undefined);
      const b = await publishSeconds(ck.base, ck.models, `${prefix}/sharded-${i}`, o.limit);
      single.push(a.seconds);
      sharded.push(b.seconds);
      files = b.files;
      bytes = b.bytes;
      log(`rep ${i}: one file ${a.seconds.toFixed(2)} s, ${b.files} files ${b.seconds.toFixed(2)} s`);
    }
    const tag = `${Math.round(bytes / 2 ** 20)}MiB.${files}files${quick ? '.quick' : ''}`;
    return [
      figure({
        name: `sharded_publish.s3.${tag}.wall`,
        value: median(sharded),
        unit: 's',
        baseline: 'the same parts published as one model.safetensors',
        baseline_value: median(single),
        goal: null,
      }),
    ];
  },
};
