/** The merge config (mergekit-style YAML). Method parameters are validated by each method's own schema. */
import { z } from 'zod';
import { DATA_FREE_METHODS } from '../merge/registry';

const uri = z
  .string()
  .min(1)
  .refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^(s3|file):\/\//.test(s), {
    message: 'expected file://, s3:// or a plain path',
  });

export const modelEntry = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    checkpoint: uri,
  })
  .strict();

export const mergeConfigSchema = z
  .object({
    method: z.string(),
    base: uri,
    models: z.array(modelEntry).min(1, 'at least one model'),
    parameters: z.record(z.string(), z.unknown()).default({}),
    output: uri,
    /** Output dtype; default: each tensor keeps the base checkpoint's dtype. */
    dtype: z.enum(['base', 'F32', 'F16', 'BF16']).default('base'),
    /** How many parallel merge activities a pass is split into. */
    shards: z.number().int().min(1).max(256).default(4),
    /** A name for the run; becomes part of its workflow id. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
      .optional(),
  })
  .passthrough()
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.models.forEach((m, i) => {
      if (names.has(m.name))
        ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model name '${m.name}'` });
      names.add(m.name);
    });
    const method = DATA_FREE_METHODS[cfg.method];
    if (!method) {
      ctx.addIssue({
        code: 'custom',
        path: ['method'],
        message: `expected one of ${Object.keys(DATA_FREE_METHODS).join(' | ')}, got '${cfg.method}'`,
      });
      return;
    }
    const r = method.params.safeParse(cfg.parameters);
    if (!r.success) {
      for (const iss of r.error.issues)
        ctx.addIssue({ ...iss, path: ['parameters', ...iss.path] } as z.core.$ZodRawIssue);
    }
  });

export type MergeConfig = z.infer<typeof mergeConfigSchema>;
