/**
 * The merge of one shard, written as one raw part object (the output's bytes for those tensors). Streams every
 * input once in element chunks (shard_stream.ts), merges each chunk with a fused kernel into reused buffers,
 * and returns the sha256 of what it read from each input file, so no separate hashing pass is needed.
 */
import { DTYPE_BYTES, encodeInto, isFloatDType, numel } from '../safetensors';
import { dataFreeMethod } from '../merge/registry';
import { linearMergeInto } from '../merge/coefficients';
import { PassState } from '../merge/method';
import { Committed, storeFor } from '../store';
import { outputDType, partUri, MergePlan } from './plan';
import { openInputs, Progress, shardTensors } from './inputs';
import { readCoefficientTable } from './coefficients';
import { Chunk, ShardStream } from './shard_stream';
import { OUTPUT_BLOCK, PartOutput } from './part_output';
import { ShardReads } from './input_digest';

/** A committed shard part, and the sha256 of the bytes it read per input file (base first, then the models). */
export interface ShardPart extends Committed {
  reads: ShardReads;
}

/** Merges one chunk into out (chunk.base.length elements); acc is scratch of the same size. */
type ChunkMerge = (out: Float32Array, acc: Float32Array, chunk: Chunk) => void;

/** The per-chunk function: the linear kernel with the table's column, or the method's own merge. */
async function chunkMerge(plan: MergePlan, state: PassState, coefficients: string | undefined): Promise<ChunkMerge> {
  const method = dataFreeMethod(plan.method);
  const params = method.params.parse(plan.params);
  if (method.kind === 'tensor')
    return (out, _acc, c) =>
      method.mergeInto(out, { name: c.tensor.name, base: c.base, models: c.models, params, state });
  if (!coefficients) throw new Error(`method '${plan.method}' merges with a coefficient table, and none was given`);
  const table = await readCoefficientTable(coefficients);
  if (table.models.join('\n') !== plan.models.map((m) => m.name).join('\n'))
    throw new Error(`${coefficients}: the table's models [${table.models}] are not the plan's`);
  const column = new Map(table.tensors.map((n, l) => [n, l]));
  const [K, L] = [table.models.length, table.tensors.length];
  let last: { name: string; coefs: number[] } | undefined;
  return (out, acc, c) => {
    if (last?.name !== c.tensor.name) {
      const l = column.get(c.tensor.name);
      if (l === undefined) throw new Error(`${coefficients}: no coefficients for tensor '${c.tensor.name}'`);
      last = { name: c.tensor.name, coefs: Array.from({ length: K }, (_, k) => table.values[k * L + l]) };
    }
    linearMergeInto(out, acc, c.base, c.models, last.coefs);
  };
}

export async function mergeShard(
  plan: MergePlan,
  shardIndex: number,
  state: PassState,
  coefficients?: string,
  progress?: Progress,
): Promise<ShardPart> {
  const merge = await chunkMerge(plan, state, coefficients);
  const { base, models } = await openInputs(plan);
  const tensors = shardTensors(base, plan.shards[shardIndex]);
  const stream = new ShardStream(base, models, tensors);
  const out = new Float32Array(stream.chunk);
  const acc = new Float32Array(stream.chunk);
  const uri = partUri(plan, shardIndex);
  const w = await storeFor(uri).writer(uri);
  const outBytes = tensors.reduce((a, t) => a + numel(t.shape) * DTYPE_BYTES[outputDType(t, plan.dtype)], 0);
  const part = new PartOutput(w, Math.max(1, Math.min(OUTPUT_BLOCK, outBytes)));
  try {
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      if (!isFloatDType(t.dtype)) {
        for await (const bytes of stream.baseBytes(t)) (await part.reserve(bytes.byteLength)).set(bytes);
      } else {
        const dtype = outputDType(t, plan.dtype);
        for await (const c of stream.chunks(t)) {
          const n = c.base.length;
          merge(out.subarray(0, n), acc, c);
          encodeInto(out.subarray(0, n), dtype, await part.reserve(n * DTYPE_BYTES[dtype]));
          // a large tensor takes many chunks: report (and heartbeat) within it too
          if (c.start + n < numel(t.shape))
            await progress?.(i + (c.start + n) / numel(t.shape), tensors.length, t.name);
        }
      }
      await progress?.(i + 1, tensors.length, t.name);
    }
    await part.flush(true);
    const committed = await w.commit();
    const reads = stream.digests().map((files, i) =>
      files.map((sha256, f) => {
        const file = (i === 0 ? base : models[i - 1]).files[f];
        return { uri: file.uri, bytes: file.size, sha256 };
      }),
    );
    return { ...committed, reads };
  } catch (e) {
    await w.abort();
    throw e;
  } finally {
    await stream.close();
  }
}
