/**
 * AdaMerging (ICLR 2024): learn the Task Arithmetic coefficients λ (one per task, or one per task per layer) by
 * minimising the entropy of each task's predictions on its unlabeled test inputs, with Adam. AdaMerging++ first
 * replaces each task vector by its TIES-processed part. `mergeflow run` runs it as the adaMergingRun workflow:
 * an epoch (one activity) is `steps_per_epoch` steps, its Adam state saved every `checkpoint_every` steps. With
 * `parallel: tasks` each step is K gradient activities (one per task, on any worker) and a reduce activity
 * that sums them in task order and takes the Adam step: the same λ, bit for bit, as one worker.
 */
import { z } from 'zod';
import { strictObject } from '../../config/strict';

const posInt = z.number().int().min(1);

export const adamergingParams = strictObject({
  granularity: z.enum(['task', 'layer']).default('layer').describe('one λ per task, or one per task per tensor'),
  variant: z.enum(['plain', 'ties']).default('plain').describe('ties = AdaMerging++ (TIES-processed task vectors)'),
  steps: posInt.default(500).describe('Adam steps'),
  batch_size: posInt.default(16).describe('unlabeled inputs per batch'),
  batches_per_task: posInt.default(1).describe('batches of each task per step'),
  lr: z.number().positive().finite().default(1e-3).describe('Adam learning rate'),
  init: z.number().finite().default(0.3).describe('initial λ'),
  clamp: z.boolean().default(true).describe('clamp λ to [0, 1] when building the merged weights'),
  keep: z.number().gt(0).lte(1).default(0.2).describe('AdaMerging++: fraction of each task vector kept'),
  seed: z.number().int().min(0).default(0).describe('seed of the batch order'),
  steps_per_epoch: z
    .union([posInt, z.literal('auto')])
    .default('auto')
    .describe('optimiser steps per activity; auto sizes them from the run so orchestration stays under 5 %'),
  parallel: z
    .enum(['none', 'tasks'])
    .default('none')
    .describe('tasks = each step fans the per-task gradients out over the workers, then sums them in task order'),
  checkpoint_every: posInt.default(10).describe('steps between saved optimiser states within an epoch'),
});
export type AdamergingParams = z.infer<typeof adamergingParams>;

export const ADAMERGING = 'adamerging';
