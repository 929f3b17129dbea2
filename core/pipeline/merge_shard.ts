/** The per-tensor merge of one shard, written as one raw part object (the output's bytes for those tensors). */
import { fromFloat32, isFloatDType } from '../safetensors';
import { dataFreeMethod } from '../merge/registry';
import { linearMergeTensor, tableColumn } from '../merge/coefficients';
import { PassState } from '../merge/method';
import { Committed, storeFor } from '../store';
import { outputDType, partUri, MergePlan } from './plan';
import { openInputs, Progress, shardTensors } from './inputs';
import { readCoefficientTable } from './coefficients';

type TensorMerge = (name: string, base: Float32Array, models: Float32Array[]) => Float32Array;

/** The per-tensor function: the linear kernel with the table's column, or the method's own merge. */
async function tensorMerge(plan: MergePlan, state: PassState, coefficients: string | undefined): Promise<TensorMerge> {
  const method = dataFreeMethod(plan.method);
  const params = method.params.parse(plan.params);
  if (method.kind === 'tensor')
    return (name, base, models) => method.mergeTensor({ name, base, models, params, state });
  if (!coefficients) throw new Error(`method '${plan.method}' merges with a coefficient table, and none was given`);
  const table = await readCoefficientTable(coefficients);
  if (table.models.join('\n') !== plan.models.map((m) => m.name).join('\n'))
    throw new Error(`${coefficients}: the table's models [${table.models}] are not the plan's`);
  const column = new Map(table.tensors.map((n, l) => [n, l]));
  const [K, L] = [table.models.length, table.tensors.length];
  return (name, base, models) => {
    const l = column.get(name);
    if (l === undefined) throw new Error(`${coefficients}: no coefficients for tensor '${name}'`);
    return linearMergeTensor(base, models, tableColumn(table.values, K, L, l));
  };
}

export async function mergeShard(
  plan: MergePlan,
  shardIndex: number,
  state: PassState,
  coefficients?: string,
  progress?: Progress,
): Promise<Committed> {
  const merge = await tensorMerge(plan, state, coefficients);
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
        await w.write(fromFloat32(merge(t.name, b, ms), outputDType(t, plan.dtype)));
      }
      await progress?.(i + 1, tensors.length, t.name);
    }
    return await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
