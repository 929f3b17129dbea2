/**
 * FW-Merging (Frank-Wolfe merging): the `frank_wolfe` method's parameters, with the spec's defaults
 * (shared/spec/algorithms.md, FW-Merging). `mergeflow run` runs it as the frankWolfeRun workflow.
 */
import { z } from 'zod';
import { strictObject } from '../../config/strict';

const posInt = z.number().int().min(1);

/** The named starting points; anything else is a saved merge given by URI. */
export const NAMED_STARTS = ['ta', 'ties', 'pretrained'] as const;
export type NamedStart = (typeof NAMED_STARTS)[number];

/**
 * A saved merge: file://, s3:// or a plain path that names a folder or file (it must contain '/', so that a
 * typo of a named start such as 'tie' is not read as a relative path).
 */
const savedMerge = z
  .string()
  .min(1)
  .refine((s) => /^(s3|file):\/\//.test(s) || (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s) && s.includes('/')), {
    message: `expected ${NAMED_STARTS.join(', ')}, or a saved merge as file://, s3:// or a path containing '/'`,
  });

export const frankWolfeParams = strictObject({
  variant: z
    .enum(['hard', 'soft'])
    .default('hard')
    .describe('hard: one FW step per iteration; soft: one pick per target, step sizes by AdaMerging'),
  oracle: z
    .enum(['task', 'layer'])
    .default('task')
    .describe('task: one whole candidate; layer: the best candidate per tensor (a composite)'),
  layer_fallback: z
    .enum(['argmin', 'current'])
    .default('argmin')
    .describe('layer oracle, tensors where no candidate scores negative: take the argmin anyway, or keep θt'),
  oracle_basis: z
    .enum(['weights', 'task_vectors'])
    .default('weights')
    .describe('the LMO scores cos(g, θm) with full weights (the reference) or cos(g, θm − θ0) with task vectors'),
  objective: z
    .enum(['cross_entropy', 'entropy'])
    .default('cross_entropy')
    .describe('cross-entropy on a labeled proxy set per target, or entropy on unlabeled test inputs'),
  step_objective: z
    .enum(['entropy', 'proxy'])
    .default('entropy')
    .describe(
      "FW-Soft's step sizes: entropy on the unlabeled test inputs (the spec), or proxy: cross-entropy on the labeled proxy set the oracle's gradient reads",
    ),
  local_merge: z.enum(['ta', 'ties']).default('ta').describe('FW-Hard update: the whole difference, or its top-keep'),
  start: z
    .union([z.enum(NAMED_STARTS), savedMerge])
    .optional()
    .describe('θ0: ta or ties over the pool, pretrained, or a saved merge (default: ta for hard, pretrained for soft)'),
  iterations: posInt.default(10).describe('Frank-Wolfe iterations T'),
  step_size: z.number().positive().finite().default(0.1).describe('γt = 2/(t+2) · step_size'),
  scaling: z
    .number()
    .positive()
    .finite()
    .default(0.3)
    .describe('FW-Hard: θ += γt · scaling · (s − θ); TA/TIES start λ'),
  keep: z.number().gt(0).lte(1).default(0.2).describe('TIES (local merge and start): fraction kept by magnitude'),
  proxy_samples: posInt.default(100).describe('labeled proxy samples per target task per iteration'),
  adamerging_steps: posInt.default(500).describe('FW-Soft: Adam steps on the step sizes per iteration'),
  adamerging_lr: z.number().positive().finite().default(1e-3).describe('FW-Soft: Adam learning rate'),
  adamerging_batch_size: posInt.default(16).describe('FW-Soft: unlabeled inputs per target per Adam step'),
  seed: z.number().int().min(0).default(0).describe('seed of the proxy rows and the batch order'),
});
export type FrankWolfeParams = z.infer<typeof frankWolfeParams>;

export const FRANK_WOLFE = 'frank_wolfe';

/** The starting point the parameters mean: the given one, else TA for FW-Hard and the pretrained model for FW-Soft. */
export function resolveStart(p: Pick<FrankWolfeParams, 'variant' | 'start'>): string {
  return p.start ?? (p.variant === 'hard' ? 'ta' : 'pretrained');
}
