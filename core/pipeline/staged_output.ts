/**
 * Where a shard's bytes go. On a store that can fill one object from several writers (the file store), each
 * shard writes straight into its range of a staged copy of its output file under the work prefix, after room
 * for the header; publishing then writes the header and links the file into place, so the output's bytes are
 * written once and never read back. Elsewhere (S3) a shard writes a whole part object, and publishing composes
 * the parts (server-side copies).
 */
import { Checkpoint, DTYPE_BYTES, numel, TensorSpec } from '../safetensors';
import { basenameUri, storeFor } from '../store';
import { outputHeader } from './compose_file';
import { shardsOf } from './output_shards';
import { MergePlan, outputDType, partUri } from './plan';

/** The tensors of the output, in order, as the output header describes them. */
export function outputSpecs(plan: MergePlan, base: Checkpoint): TensorSpec[] {
  return base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
}

export function stagedUri(plan: MergePlan, fileName: string): string {
  return `${plan.workPrefix}staged/${fileName}`;
}

/** A whole part object (`offset` unset), or a range of a staged output file starting at `offset`. */
export interface ShardTarget {
  uri: string;
  offset?: number;
}

export function shardTarget(plan: MergePlan, shard: number, specs: readonly TensorSpec[]): ShardTarget {
  const store = storeFor(plan.workPrefix);
  if (!store.rangeWriter || !store.publishStaged || storeFor(plan.outputFile).scheme !== store.scheme)
    return { uri: partUri(plan, shard) };
  const file = plan.outputFiles?.find((f) => shardsOf(f, plan.shards).includes(shard));
  const first = file?.first ?? 0;
  const count = file?.count ?? specs.length;
  const tensors = specs.slice(first, first + count);
  let offset = outputHeader(tensors, plan.method).bytes.byteLength;
  for (let i = first; i < plan.shards[shard].first; i++) offset += numel(specs[i].shape) * DTYPE_BYTES[specs[i].dtype];
  return { uri: stagedUri(plan, file?.name ?? basenameUri(plan.outputFile)), offset };
}
