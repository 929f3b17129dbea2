/**
 * The merge of one shard: the output's bytes for those tensors, written as one raw part object or straight into
 * their range of the staged output file (staged_output.ts). Streams every input once in element chunks
 * (shard_stream.ts), merges each chunk with a fused kernel into reused buffers, and returns the BLAKE3 of what it
 * read from each input file, so no separate hashing pass is needed.
 */
import { Checkpoint, DTYPE_BYTES, encodeInto, isFloatDType, numel, TensorInfo } from '../safetensors';
import { dataFreeMethod } from '../merge/registry';
import { PassState } from '../merge/method';
import { Committed, storeFor } from '../store';
import { outputDType, MergePlan } from './plan';
import { outputSpecs, shardTarget, ShardTarget } from './staged_output';
import { openInputs, Progress, shardTensors } from './inputs';
import { readCoefficientTable } from './coefficients';
import { ShardStream } from './shard_stream';
import { KernelPool } from './kernel_pool';
import { KernelSpec } from './kernel_range';
import { OUTPUT_BLOCK, PartOutput } from './part_output';
import { ShardReads } from './input_digest';
import { shardDigestCache } from './read_digest_cache';

/** A committed shard part, and the BLAKE3 of the bytes it read per input file (base first, then the models). */
export interface ShardPart extends Committed {
  reads: ShardReads;
}

/** What the kernel threads run, and each tensor's coefficients (linear methods; none for a tensor method). */
async function kernelFor(
  plan: MergePlan,
  state: PassState,
  coefficients: string | undefined,
): Promise<{ spec: KernelSpec; coefs: (tensor: string) => number[] }> {
  const method = dataFreeMethod(plan.method);
  if (method.kind === 'tensor')
    return { spec: { kind: 'tensor', method: plan.method, params: plan.params, state }, coefs: () => [] };
  if (!coefficients) throw new Error(`method '${plan.method}' merges with a coefficient table, and none was given`);
  const baseFree = method.baseFree?.(method.params.parse(plan.params)) ?? false;
  const table = await readCoefficientTable(coefficients);
  if (table.models.join('\n') !== plan.models.map((m) => m.name).join('\n'))
    throw new Error(`${coefficients}: the table's models [${table.models}] are not the plan's`);
  const column = new Map(table.tensors.map((n, l) => [n, l]));
  const [K, L] = [table.models.length, table.tensors.length];
  let last: { name: string; coefs: number[] } | undefined;
  const coefs = (name: string): number[] => {
    if (last?.name !== name) {
      const l = column.get(name);
      if (l === undefined) throw new Error(`${coefficients}: no coefficients for tensor '${name}'`);
      last = { name, coefs: Array.from({ length: K }, (_, k) => table.values[k * L + l]) };
    }
    return last.coefs;
  };
  return { spec: { kind: 'linear', baseFree }, coefs };
}

export async function mergeShard(
  plan: MergePlan,
  shardIndex: number,
  state: PassState,
  coefficients?: string,
  progress?: Progress,
): Promise<ShardPart> {
  const { spec, coefs } = await kernelFor(plan, state, coefficients);
  const { base, models } = await openInputs(plan);
  const tensors = shardTensors(base, plan.shards[shardIndex]);
  const target = shardTarget(plan, shardIndex, outputSpecs(plan, base));
  // threads first (a bad MERGEFLOW_KERNEL_THREADS fails here, before anything is opened); closed in finally
  const pool = new KernelPool(spec);
  let stream: ShardStream | undefined;
  try {
    const readBase = !(spec.kind === 'linear' && spec.baseFree);
    // inputs unchanged since an earlier merge read the same tensors: their digests come from the cache
    const { cached, remember } = await shardDigestCache(base, models, tensors, readBase);
    // the kernel threads check the inputs are finite as they merge; the WebAssembly kernel reads the stream's
    // buffers in its own memory; a base-free merge does not read the base's float tensors
    stream = new ShardStream(base, models, tensors, {
      checkFinite: false,
      arena: pool.arena,
      readBase,
      hashing: cached ? 'none' : 'thread',
    });
    const s = stream;
    const digests = async () => cached ?? remember(await s.digests());
    return await writePart({ plan, target, base, models, tensors, stream, pool, coefs, progress, digests });
  } finally {
    await Promise.all([stream?.close(), pool.close()]);
  }
}

interface PartJob {
  plan: MergePlan;
  target: ShardTarget;
  base: Checkpoint;
  models: Checkpoint[];
  tensors: TensorInfo[];
  stream: ShardStream;
  pool: KernelPool;
  coefs: (tensor: string) => number[];
  progress: Progress | undefined;
  /** Per input, per file: the BLAKE3 of the bytes the shard read (hashed while streaming, or cached). */
  digests: () => Promise<string[][]>;
}

/**
 * Stream the shard's tensors through the kernel into the part object (or its range of the staged output);
 * commit it, or abort it on failure.
 */
async function writePart({
  plan,
  target,
  base,
  models,
  tensors,
  stream,
  pool,
  coefs,
  progress,
  digests,
}: PartJob): Promise<ShardPart> {
  const store = storeFor(target.uri);
  const w =
    target.offset === undefined ? await store.writer(target.uri) : await store.rangeWriter!(target.uri, target.offset);
  // shared memory, so the kernel threads write their ranges of the output where this thread reads them
  const scratch = () => pool.arena?.f32(stream.chunk) ?? new Float32Array(new SharedArrayBuffer(stream.chunk * 4));
  const out = scratch();
  const acc = scratch();
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
          if (!(await pool.merge(t.name, { out, acc, base: c.base, models: c.models }, coefs(t.name)))) {
            await stream.refuseNonFinite(c);
            throw new Error(`internal: '${t.name}' holds a value that is not finite, and no input was refused`);
          }
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
    const reads = (await digests()).map((files, i) =>
      files.map((blake3, f) => {
        const file = (i === 0 ? base : models[i - 1]).files[f];
        return { uri: file.uri, bytes: file.size, blake3 };
      }),
    );
    return { ...committed, reads };
  } catch (e) {
    await w.abort();
    throw e;
  }
}
