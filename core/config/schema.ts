/**
 * The merge config (mergekit-style YAML): a union on `method`. Data-free methods list `models` and take their
 * parameters from their own schema in core/merge; data-driven methods list `tasks` (model, head, unlabeled data).
 * Every object is strict: an unknown key at any level is an error that names it.
 */
import { z } from 'zod';
import { DATA_FREE_METHODS, DATA_FREE_NAMES, DataFreeMethodName } from '../merge/registry';
import { ADAMERGING, adamergingParams } from '../merge/adamerging/params';
import { FRANK_WOLFE, frankWolfeParams } from '../merge/frank_wolfe/params';
import { strictObject } from './strict';
import { parseByteSize, SIZE_HINT } from './size';

export const uri = z
  .string()
  .min(1)
  .refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^(s3|file):\/\//.test(s), {
    message: 'expected file://, s3:// or a plain path',
  });

const entryName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');

/** A model's checkpoint, or the newest checkpoint under a prefix (resolved when the run starts). */
export const latestUnder = strictObject({ latest_under: uri });
export const checkpointRef = z.union([uri, latestUnder], {
  error: 'expected a URI (file://, s3:// or a plain path) or { latest_under: URI }',
});

export const modelEntry = strictObject({ name: entryName, checkpoint: checkpointRef });

export const taskEntry = strictObject({
  name: entryName,
  /** The model fine-tuned on this task (its task vector is model − base), or the newest one under a prefix. */
  model: checkpointRef,
  /** The task's frozen classification head. */
  head: uri,
  /** Unlabeled test inputs of the task (labels, if present, are never read). */
  data: uri,
});

/** Fields every method shares. */
const shared = {
  base: uri,
  output: uri,
  /** Output dtype; default: each tensor keeps the base checkpoint's dtype. */
  dtype: z.enum(['base', 'F32', 'F16', 'BF16']).default('base'),
  /** How many parallel merge activities a pass is split into. */
  shards: z.number().int().min(1).max(256).default(4),
  /** A name for the run; becomes part of its workflow id. */
  name: entryName.optional(),
  /** Where the config came from (written by `mergeflow suite config`); carried along, not read by the merge. */
  suite: z.record(z.string(), z.unknown()).optional(),
};

/**
 * Above this many bytes of tensors the output is sharded like a Hugging Face checkpoint (model-0000N-of-0000M
 * files and model.safetensors.index.json); unset, it is one model.safetensors. Kept as written; planMerge reads it.
 */
export const maxShardSize = z.union([z.number(), z.string()]).refine((v) => parseByteSize(v) !== undefined, {
  error: (iss) => `expected ${SIZE_HINT}, got ${JSON.stringify(iss.input)}`,
});

function dataFreeVariant(method: DataFreeMethodName) {
  const params = DATA_FREE_METHODS[method].params as z.ZodType<Record<string, unknown>>;
  return strictObject({
    method: z.literal(method),
    models: z.array(modelEntry).min(1, 'at least one model'),
    parameters: params.prefault({}),
    ...shared,
    max_shard_size: maxShardSize.optional(),
  });
}

const adamergingVariant = strictObject({
  method: z.literal(ADAMERGING),
  tasks: z.array(taskEntry).min(1, 'at least one task'),
  parameters: adamergingParams.prefault({}),
  ...shared,
});

/** A Frank-Wolfe target task: its frozen head, a labeled proxy set (cross-entropy) and/or unlabeled test inputs. */
export const fwTargetEntry = strictObject({
  name: entryName,
  head: uri,
  /** Labeled rows (the task's train split): the cross-entropy objective's proxy set. */
  proxy: uri.optional(),
  /** Unlabeled test inputs: the entropy objective and FW-Soft's step sizes (labels, if any, only evaluate). */
  data: uri.optional(),
});

/** The candidate pool: listed, or every checkpoint found under a store prefix. */
/** A listed candidate names one checkpoint (`latest_under` is for scheduled data-free merges; a pool has `prefix`). */
export const poolEntry = strictObject({ name: entryName, checkpoint: uri });
export const fwPool = z.union([z.array(poolEntry).min(1, 'at least one candidate'), strictObject({ prefix: uri })], {
  error: 'expected a list of candidates ({ name, checkpoint }) or { prefix: URI } (every checkpoint under it)',
});

const frankWolfeVariant = strictObject({
  method: z.literal(FRANK_WOLFE),
  pool: fwPool,
  targets: z.array(fwTargetEntry).min(1, 'at least one target task'),
  /** Leave out (with a warning) candidates whose tensors differ from the base, instead of refusing the run. */
  skip_incompatible: z.boolean().default(false),
  parameters: frankWolfeParams.prefault({}),
  ...shared,
});

const [first, ...rest] = DATA_FREE_NAMES.map(dataFreeVariant);
const variants = z.discriminatedUnion('method', [first, ...rest, adamergingVariant, frankWolfeVariant]);

function uniqueNames(
  list: 'models' | 'tasks' | 'targets' | 'pool',
  entries: readonly { name: string }[],
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (seen.has(e.name))
      ctx.addIssue({
        code: 'custom',
        path: [list, i, 'name'],
        message: `duplicate ${list === 'pool' ? 'candidate' : list.slice(0, -1)} name '${e.name}'`,
      });
    seen.add(e.name);
  });
}

/** A checkpoint URI compared loosely: a folder with or without its trailing slash or its model.safetensors. */
function sameCheckpointKey(u: string): string {
  return u.replace(/\/+$/, '').replace(/\/model\.safetensors$/, '');
}

/** Checks of a Frank-Wolfe config that need more than one field: data every target needs, no duplicate. */
function checkFrankWolfe(cfg: z.infer<typeof frankWolfeVariant>, ctx: z.RefinementCtx): void {
  uniqueNames('targets', cfg.targets, ctx);
  const p = cfg.parameters;
  cfg.targets.forEach((t, i) => {
    const proxySteps = p.variant === 'soft' && p.step_objective === 'proxy';
    if (p.objective === 'cross_entropy' && !t.proxy)
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 'proxy'],
        message: `target '${t.name}' has no proxy data: the cross_entropy objective needs a labeled proxy set (its train split), or set parameters.objective=entropy`,
      });
    else if (proxySteps && !t.proxy)
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 'proxy'],
        message: `target '${t.name}' has no proxy data: step_objective proxy learns FW-Soft's step sizes on a labeled proxy set (its train split), or set parameters.step_objective=entropy`,
      });
    if ((p.objective === 'entropy' || (p.variant === 'soft' && !proxySteps)) && !t.data)
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 'data'],
        message: `target '${t.name}' has no data: ${p.variant === 'soft' ? "FW-Soft's step sizes" : 'the entropy objective'} need its unlabeled test inputs${p.objective === 'entropy' ? '' : ', or set parameters.step_objective=proxy'}`,
      });
  });
  if (Array.isArray(cfg.pool)) {
    uniqueNames('pool', cfg.pool, ctx);
    const seen = new Map<string, string>();
    cfg.pool.forEach((m, i) => {
      const key = sameCheckpointKey(m.checkpoint);
      const other = seen.get(key);
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['pool', i, 'checkpoint'],
          message: `candidates '${other}' and '${m.name}' are the same checkpoint (${m.checkpoint}); list each model once`,
        });
      else seen.set(key, m.name);
    });
  }
}

export const mergeConfigSchema = variants.superRefine((cfg, ctx) => {
  if (cfg.method === ADAMERGING) uniqueNames('tasks', cfg.tasks, ctx);
  else if (cfg.method === FRANK_WOLFE) checkFrankWolfe(cfg, ctx);
  else {
    uniqueNames('models', cfg.models, ctx);
    if (cfg.max_shard_size !== undefined && cfg.output.endsWith('.safetensors'))
      ctx.addIssue({
        code: 'custom',
        path: ['max_shard_size'],
        message: `a sharded output is a folder, but output names the file ${cfg.output}; set output to a folder or drop max_shard_size`,
      });
  }
});

export const METHOD_NAMES: readonly string[] = [...DATA_FREE_NAMES, ADAMERGING, FRANK_WOLFE];

/**
 * The shared fields, checked loosely: used to report the other problems of a config whose `method` is unknown
 * (the union cannot pick a variant then, so it would report the method alone).
 */
export const sharedFieldsSchema = z.looseObject({ ...shared, models: z.array(modelEntry).optional() });

export type MergeConfig = z.infer<typeof mergeConfigSchema>;
export type DataFreeConfig = Exclude<MergeConfig, { method: typeof ADAMERGING | typeof FRANK_WOLFE }>;
export type AdamergingConfig = Extract<MergeConfig, { method: typeof ADAMERGING }>;
export type FrankWolfeConfig = Extract<MergeConfig, { method: typeof FRANK_WOLFE }>;

export function isDataFree(cfg: MergeConfig): cfg is DataFreeConfig {
  return cfg.method !== ADAMERGING && cfg.method !== FRANK_WOLFE;
}

/** A model's checkpoint URI; throws when it still names a prefix (`latest_under`) that was not resolved. */
export function checkpointOf(m: { name: string; checkpoint: z.infer<typeof checkpointRef> }): string {
  if (typeof m.checkpoint === 'string') return m.checkpoint;
  throw new Error(
    `model '${m.name}': checkpoint { latest_under: ${m.checkpoint.latest_under} } was not resolved; only a run resolves it`,
  );
}

/** A method the config schema accepts but mergeflow cannot run yet. */
export class MethodNotImplementedError extends Error {
  override name = 'MethodNotImplementedError';
}

/** The config, if its method is one that runs today; otherwise a one-line refusal. */
export function runnableConfig(cfg: MergeConfig): DataFreeConfig {
  if (isDataFree(cfg)) return cfg;
  throw new MethodNotImplementedError(
    `method '${cfg.method}' is not implemented yet (its config validates: 'mergeflow validate' shows it with defaults); use one of ${DATA_FREE_NAMES.join(', ')}`,
  );
}
