/**
 * Planning a data-free merge: read every header (never tensor data), check that the models agree with the
 * base, and split the tensor list into contiguous shards of similar size. The plan is a small plain object:
 * it travels in Temporal payloads, so it holds URIs and counts, never tensors or tensor lists.
 */
import { checkpointOf, MergeConfig, runnableConfig } from '../config/schema';
import { parseByteSize } from '../config/size';
import { alignShards, INDEX_FILE, OutputFilePlan, splitOutputFiles } from './output_shards';
import { Checkpoint, DType, DTYPE_BYTES, isFloatDType, numel, TensorInfo } from '../safetensors';
import { joinUri } from '../store/uri';
import { workPrefixFor } from '../resume/work';
import { dataFreeMethod } from '../merge/registry';

export class InputMismatchError extends Error {
  override name = 'InputMismatchError';
}

export interface ShardPlan {
  index: number;
  /** Index of the first tensor (in base order) and how many tensors. */
  first: number;
  count: number;
  elements: number;
}

export interface PassRef {
  name: string;
  phase: string;
}

export interface InputRef {
  name: string;
  uri: string;
  bytes: number;
  /** Each file's version when planned (S3 ETag; for files size-mtime): later reads are pinned to these. */
  versions: Record<string, string>;
}

export interface MergePlan {
  runId: string;
  method: string;
  params: Record<string, unknown>;
  /** The passes the method declares (map over shards + reduce), in order, run before merging. */
  passes: PassRef[];
  /** How shards are merged: the linear kernel with a coefficient table, or the method's own per-tensor merge. */
  kernel: 'linear' | 'tensor';
  base: InputRef;
  models: InputRef[];
  /** Where the merged safetensors object goes, and where its manifest goes. */
  outputFile: string;
  manifestUri: string;
  /** Set when the output is a Hugging Face folder: files copied from the base folder beside the weights. */
  outputFolder?: string;
  /**
   * Set when the output is sharded (max_shard_size, and more bytes than that): the files in order, each a range
   * of tensors; every merge shard then lies inside one file. `outputFile` is then the index.
   */
  outputFiles?: OutputFilePlan[];
  copyFromBase: string[];
  workPrefix: string;
  dtype: 'base' | DType;
  tensorCount: number;
  mergedElements: number;
  outputBytes: number;
  shards: ShardPlan[];
  warnings: string[];
}

/** Files copied from a base folder beside the merged weights, when present (as mergekit does). */
const SIDE_FILES = [
  'config.json',
  'preprocessor_config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.json',
  'vocab.txt',
  'merges.txt',
];

export function outputLocation(output: string): { file: string; manifest: string; folder?: string } {
  if (output.endsWith('.safetensors'))
    return { file: output, manifest: output.replace(/\.safetensors$/, '.manifest.json') };
  return {
    file: joinUri(output, 'model.safetensors'),
    manifest: joinUri(output, 'mergeflow.manifest.json'),
    folder: output,
  };
}

export function outputDType(t: TensorInfo, dtype: 'base' | DType): DType {
  return dtype === 'base' || !isFloatDType(t.dtype) ? t.dtype : dtype;
}

/** Check the models against the base; throws InputMismatchError naming the model and tensor. */
export function checkCompatible(base: Checkpoint, models: { name: string; ck: Checkpoint }[]): string[] {
  const warnings: string[] = [];
  for (const { name, ck } of models) {
    for (const t of base.tensors) {
      if (!ck.has(t.name)) {
        throw new InputMismatchError(
          `model '${name}' (${ck.uri}) has no tensor '${t.name}' that the base has; all models must share the base architecture`,
        );
      }
      const m = ck.info(t.name);
      if (m.shape.join(',') !== t.shape.join(',')) {
        throw new InputMismatchError(
          `model '${name}' tensor '${t.name}' has shape [${m.shape}] but the base has [${t.shape}]; the models do not share an architecture`,
        );
      }
      if (isFloatDType(t.dtype) !== isFloatDType(m.dtype)) {
        throw new InputMismatchError(
          `model '${name}' tensor '${t.name}' is ${m.dtype} but the base is ${t.dtype}; float and integer tensors cannot be mixed`,
        );
      }
      if (!isFloatDType(t.dtype) && m.dtype !== t.dtype) {
        throw new InputMismatchError(`model '${name}' tensor '${t.name}' is ${m.dtype} but the base is ${t.dtype}`);
      }
    }
    const extra = ck.tensors.filter((t) => !base.has(t.name)).length;
    if (extra) warnings.push(`model '${name}' has ${extra} tensors the base lacks; they are ignored`);
  }
  return warnings;
}

/** Contiguous tensor ranges of similar element counts (fewer shards than asked when tensors are few or large). */
export function splitShards(tensors: readonly TensorInfo[], shards: number): ShardPlan[] {
  const sizes = tensors.map((t) => numel(t.shape));
  const total = sizes.reduce((a, b) => a + b, 0);
  const want = Math.max(1, Math.min(shards, tensors.length));
  const cuts: number[] = [];
  let acc = 0;
  let next = 1;
  for (let i = 0; i < tensors.length - 1 && next < want; i++) {
    acc += sizes[i];
    if (acc >= (total * next) / want) {
      cuts.push(i + 1);
      while (next < want && acc >= (total * next) / want) next++;
    }
  }
  cuts.push(tensors.length);
  const out: ShardPlan[] = [];
  let first = 0;
  for (const end of cuts) {
    let elements = 0;
    for (let i = first; i < end; i++) elements += sizes[i];
    out.push({ index: out.length, first, count: end - first, elements });
    first = end;
  }
  return out;
}

/** `progress` counts checkpoints whose headers are read (a pool of hundreds over S3 takes a while). */
export async function planMerge(
  config: MergeConfig,
  runId: string,
  progress?: (done: number, total: number, note?: string) => void | Promise<void>,
): Promise<MergePlan> {
  const cfg = runnableConfig(config);
  const base = await Checkpoint.open(cfg.base);
  let opened = 0;
  const models = await Promise.all(
    cfg.models.map(async (m) => {
      const ck = await Checkpoint.open(checkpointOf(m));
      await progress?.(++opened, cfg.models.length, m.name);
      return { name: m.name, ck };
    }),
  );
  const warnings = checkCompatible(base, models);
  const loc = outputLocation(cfg.output);
  const dtype = cfg.dtype as 'base' | DType;
  const method = dataFreeMethod(cfg.method);
  let mergedElements = 0;
  const sizes = base.tensors.map((t) => numel(t.shape) * DTYPE_BYTES[outputDType(t, dtype)]);
  const outputBytes = sizes.reduce((a, b) => a + b, 0);
  for (const t of base.tensors) if (isFloatDType(t.dtype)) mergedElements += numel(t.shape);
  const limit = cfg.max_shard_size === undefined ? undefined : parseByteSize(cfg.max_shard_size);
  const files = limit === undefined || !loc.folder ? undefined : splitOutputFiles(sizes, limit);
  const sharded = files && files.length > 1 ? files : undefined;
  const shards = splitShards(base.tensors, cfg.shards);
  return {
    runId,
    method: cfg.method,
    params: cfg.parameters,
    passes: method.passes.map((p) => ({ name: p.name, phase: p.phase })),
    kernel: method.kind,
    base: { name: 'base', uri: base.uri, bytes: base.size, versions: base.versions },
    models: models.map(({ name, ck }) => ({ name, uri: ck.uri, bytes: ck.size, versions: ck.versions })),
    outputFile: sharded ? joinUri(loc.folder!, INDEX_FILE) : loc.file,
    manifestUri: loc.manifest,
    outputFolder: loc.folder,
    ...(sharded ? { outputFiles: sharded } : {}),
    copyFromBase: loc.folder && base.folder ? SIDE_FILES.map((f) => joinUri(base.folder!, f)) : [],
    workPrefix: workPrefixFor(cfg.output, runId),
    dtype,
    tensorCount: base.tensors.length,
    mergedElements,
    outputBytes,
    shards: sharded
      ? alignShards(
          shards,
          sharded,
          base.tensors.map((t) => numel(t.shape)),
        )
      : shards,
    warnings,
  };
}

export function partUri(plan: MergePlan, shard: number): string {
  return `${plan.workPrefix}parts/part-${String(shard).padStart(5, '0')}.bin`;
}

/** Where a pass's map step writes one shard's saved accumulator. */
export function passUri(plan: MergePlan, pass: string, shard: number): string {
  return `${plan.workPrefix}passes/${pass}-${String(shard).padStart(5, '0')}.json`;
}

export function coefficientsUri(plan: MergePlan): string {
  return `${plan.workPrefix}coefficients.safetensors`;
}
