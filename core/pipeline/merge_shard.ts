/** The per-tensor merge of one shard, written as one raw part object (the output's bytes for those tensors). */
import { fromFloat32, isFloatDType } from '../safetensors';
import { dataFreeMethod } from '../merge/registry';
import { GlobalStats } from '../merge/method';
import { Committed, storeFor } from '../store';
import { outputDType, partUri, MergePlan } from './plan';
import { openInputs, Progress, shardTensors } from './inputs';

export async function mergeShard(
  plan: MergePlan,
  shardIndex: number,
  global: GlobalStats,
  progress?: Progress,
): Promise<Committed> {
  const method = dataFreeMethod(plan.method);
  const params = method.params.parse(plan.params);
  const { base, models } = await openInputs(plan);
  const tensors = shardTensors(base, plan.shards[shardIndex]);
  const uri = partUri(plan, shardIndex);
  const w = await storeFor(uri).writer(uri);
  try {
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      if (!isFloatDType(t.dtype)) {
        await w.write(await base.readBytes(t.name));
      } else {
        const b = await base.readFloat32(t.name);
        const ms = await Promise.all(models.map((m) => m.readFloat32(t.name)));
        const merged = method.mergeTensor({ name: t.name, base: b, models: ms, params, global });
        await w.write(fromFloat32(merged, outputDType(t, plan.dtype)));
      }
      await progress?.(i + 1, tensors.length, t.name);
    }
    return await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
