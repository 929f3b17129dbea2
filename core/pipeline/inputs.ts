/** Opening a plan's inputs inside an activity, and checking they did not change since planning. */
import { Checkpoint, isFloatDType, TensorInfo } from '../safetensors';
import { InputMismatchError, MergePlan, ShardPlan } from './plan';

export interface OpenInputs {
  base: Checkpoint;
  models: Checkpoint[];
}

export async function openInputs(plan: MergePlan): Promise<OpenInputs> {
  // pinned: a file replaced since planning throws InputChangedError here or at any later read
  const base = await Checkpoint.open(plan.base.uri, plan.base.versions);
  const models = await Promise.all(plan.models.map((m) => Checkpoint.open(m.uri, m.versions)));
  for (const [ref, ck] of [[plan.base, base] as const, ...plan.models.map((m, i) => [m, models[i]] as const)]) {
    if (ck.size !== ref.bytes) {
      throw new InputMismatchError(
        `${ref.uri} changed while the run was in progress (${ref.bytes} -> ${ck.size} bytes); start a new run`,
      );
    }
  }
  return { base, models };
}

export function shardTensors(base: Checkpoint, shard: ShardPlan): TensorInfo[] {
  return base.tensors.slice(shard.first, shard.first + shard.count);
}

export function floatTensors(base: Checkpoint, shard: ShardPlan): TensorInfo[] {
  return shardTensors(base, shard).filter((t) => isFloatDType(t.dtype));
}

export type Progress = (done: number, total: number, note?: string) => void | Promise<void>;
