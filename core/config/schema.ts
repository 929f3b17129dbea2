/**
 * The merge config (mergekit-style YAML): a union on `method`. Data-free methods list `models` and take their
 * parameters from their own schema in core/merge; data-driven methods list `tasks` (model, head, unlabeled data).
 * Every object is strict: an unknown key at any level is an error that names it.
 */
import { z } from 'zod';
import { DATA_FREE_METHODS, DATA_FREE_NAMES, DataFreeMethodName } from '../merge/registry';
import { ADAMERGING, adamergingParams } from '../merge/adamerging/params';
import { strictObject } from './strict';

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
  /** The model fine-tuned on this task (its task vector is model − base). */
  model: uri,
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

function dataFreeVariant(method: DataFreeMethodName) {
  const params = DATA_FREE_METHODS[method].params as z.ZodType<Record<string, unknown>>;
  return strictObject({
    method: z.literal(method),
    models: z.array(modelEntry).min(1, 'at least one model'),
    parameters: params.prefault({}),
    ...shared,
  });
}

const adamergingVariant = strictObject({
  method: z.literal(ADAMERGING),
  tasks: z.array(taskEntry).min(1, 'at least one task'),
  parameters: adamergingParams.prefault({}),
  ...shared,
});

const [first, ...rest] = DATA_FREE_NAMES.map(dataFreeVariant);
const variants = z.discriminatedUnion('method', [first, ...rest, adamergingVariant]);

function uniqueNames(list: 'models' | 'tasks', entries: readonly { name: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (seen.has(e.name))
      ctx.addIssue({
        code: 'custom',
        path: [list, i, 'name'],
        message: `duplicate ${list.slice(0, -1)} name '${e.name}'`,
      });
    seen.add(e.name);
  });
}

export const mergeConfigSchema = variants.superRefine((cfg, ctx) => {
  if (cfg.method === ADAMERGING) uniqueNames('tasks', cfg.tasks, ctx);
  else uniqueNames('models', cfg.models, ctx);
});

export const METHOD_NAMES: readonly string[] = [...DATA_FREE_NAMES, ADAMERGING];

/**
 * The shared fields, checked loosely: used to report the other problems of a config whose `method` is unknown
 * (the union cannot pick a variant then, so it would report the method alone).
 */
export const sharedFieldsSchema = z.looseObject({ ...shared, models: z.array(modelEntry).optional() });

export type MergeConfig = z.infer<typeof mergeConfigSchema>;
export type DataFreeConfig = Exclude<MergeConfig, { method: typeof ADAMERGING }>;
export type AdamergingConfig = Extract<MergeConfig, { method: typeof ADAMERGING }>;

export function isDataFree(cfg: MergeConfig): cfg is DataFreeConfig {
  return cfg.method !== ADAMERGING;
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
