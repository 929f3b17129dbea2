/** Running a method's declared passes: the map over one shard (its result saved in the store) and the reduce. */
import { putObject, readJson } from '../store';
import { dataFreeMethod } from '../merge/registry';
import { PassContext, PassState, ShardPass } from '../merge/method';
import { MergePlan, passUri } from './plan';
import { floatTensors, openInputs, Progress } from './inputs';
import { ShardStream } from './shard_stream';
import { numel } from '../safetensors';

function passOf(
  plan: MergePlan,
  name: string,
): { pass: ShardPass<unknown>; ctx: (s: PassState) => PassContext<unknown> } {
  const method = dataFreeMethod(plan.method);
  const pass = method.passes.find((p) => p.name === name);
  if (!pass) throw new Error(`method '${plan.method}' declares no pass '${name}'`);
  const params = method.params.parse(plan.params);
  return { pass, ctx: (state) => ({ params, models: plan.models.length, state }) };
}

/** Fold every float tensor of one shard (in element chunks) into the pass's accumulator; write it to the work prefix; return its URI. */
export async function mapShard(
  plan: MergePlan,
  passName: string,
  shardIndex: number,
  state: PassState,
  progress?: Progress,
): Promise<string> {
  const { pass, ctx: contextFor } = passOf(plan, passName);
  const ctx = contextFor(state);
  const { base, models } = await openInputs(plan);
  const tensors = floatTensors(base, plan.shards[shardIndex]);
  const acc = pass.start(ctx);
  // the passes record no digests, so nothing is hashed
  const stream = new ShardStream(base, models, tensors, { hashing: 'none' });
  try {
    for (let i = 0; i < tensors.length; i++) {
      const name = tensors[i].name;
      const n = numel(tensors[i].shape);
      for await (const c of stream.chunks(tensors[i])) {
        pass.tensor(acc, { name, base: c.base, models: c.models }, ctx);
        const done = c.start + c.base.length;
        if (done < n) await progress?.(i + done / n, tensors.length, name);
      }
      await progress?.(i + 1, tensors.length, name);
    }
  } finally {
    await stream.close();
  }
  const uri = passUri(plan, passName, shardIndex);
  await putObject(uri, Buffer.from(JSON.stringify({ pass: passName, shard: shardIndex, saved: pass.save(acc) })));
  return uri;
}

/** Read the shards' saved accumulators (in the order given) and reduce them into the next pass state. */
export async function reducePass(
  plan: MergePlan,
  passName: string,
  uris: readonly string[],
  state: PassState,
  progress?: Progress,
): Promise<PassState> {
  const { pass, ctx } = passOf(plan, passName);
  const saved: unknown[] = [];
  for (const [i, uri] of uris.entries()) {
    await progress?.(i, uris.length, uri);
    const doc = (await readJson(uri, (why) => new Error(`${uri}: saved pass result is not valid JSON (${why})`))) as {
      saved: unknown;
    };
    saved.push(doc.saved);
  }
  return pass.reduce(saved, ctx(state));
}
