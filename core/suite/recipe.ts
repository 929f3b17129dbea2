/**
 * The mini-8 suite's recipe per size: the tiny CLIP-style ViT, and how long it is pretrained and fine-tuned.
 * Everything a build does follows from (recipe, seed); the recipe is written into suite.json.
 */
import type { ClipVisionConfig } from '../models/clip_vit_config';
import type { TaskSize } from '../data/tasks';
import type { PretextMode } from './pretext';

export interface TrainRecipe {
  /** Optimiser steps. */
  steps: number;
  /** Images per step. */
  batchSize: number;
  /** Peak Adam learning rate; linear warm-up over `warmup` steps, then cosine decay to 10 % of the peak. */
  lr: number;
  warmup: number;
  /**
   * Layer-wise learning-rate decay: the output side (post layer norm, projection, head) trains at `lr`, each
   * encoder layer below it at `layerDecay` times the one above, the embeddings below the first layer. 1 = off.
   */
  layerDecay?: number;
}

export interface SuiteRecipe {
  size: TaskSize;
  model: ClipVisionConfig;
  pretrain: TrainRecipe;
  finetune: TrainRecipe;
  /** Train images per class used to fit each task's head (class-mean prototypes). */
  headImagesPerTask: number;
  /** log of the heads' logit scale (CLIP convention: scale = exp(logitScale)). */
  headLogitScale: number;
  /** Centre the class prototypes (subtract their mean) before normalising them. */
  headCentre?: boolean;
  /**
   * Weight of the prototype in each head row (default 1: pure prototypes, suite v2). Below 1, each row is the
   * normalised mix of its prototype and a seeded random unit vector of its own task and class: heads that name
   * the classes only partly in the image tower's geometry, as CLIP's text tower does (suite v3; see
   * core/suite/README.md, "Suite v3").
   */
  headMix?: number;
  /**
   * What seeds each head's random directions: 'task' (suite v3: every task its own) or 'labels' (tasks that
   * name the same classes share them, as CLIP's text prompts are the same for every task with those classes).
   */
  headMixKey?: 'task' | 'labels';
  /** log of the scale of the pretext head used while pretraining. */
  pretextLogitScale: number;
  /** Train rows per task fed to the pooled pretraining data. */
  pretrainRowsPerTask: number;
  /** Data-parallel shards of each pretraining step (fixed: the result depends on it, not on the core count). */
  pretrainShards: number;
  /** The pretraining label space (see pretext.ts). */
  pretext: PretextMode;
  /** k-means clusters per domain for the 'cluster' pretext. */
  pretextClusters: number;
}

const base = (over: Partial<ClipVisionConfig>): ClipVisionConfig => ({
  hiddenSize: 96,
  intermediateSize: 384,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  imageSize: 28,
  patchSize: 7,
  numChannels: 1,
  projectionDim: 64,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
  ...over,
});

export const RECIPES: Readonly<Record<TaskSize, SuiteRecipe>> = {
  full: {
    size: 'full',
    // suite v5: four layers and a projection of 256 (the heads' space), so the targets' random head rows overlap
    // half as much as at 64 (core/suite/README.md, "Suite v5")
    model: base({ numHiddenLayers: 4, projectionDim: 256 }),
    // 1000 steps of 64 images (two data-parallel shards of 32) over the ~96k pooled images
    pretrain: { steps: 1000, batchSize: 64, lr: 2e-3, warmup: 40 },
    // each task: 150 steps of 32 images; earlier layers learn slower (layer-wise decay 0.5)
    finetune: { steps: 150, batchSize: 32, lr: 2e-3, warmup: 10, layerDecay: 0.5 },
    headImagesPerTask: 1000,
    // suite v5: 15 (v2-v4: 10); sharper heads cost Task Arithmetic 2.3-2.5 points and move AdaMerging's end point
    // by -0.1 to +0.5, so its share of the gap rises to 47-50 % (core/suite/README.md, "Suite v5")
    headLogitScale: Math.log(15),
    // suite v3: with pure prototypes, raising one task's coefficient made every other target surer of its own
    // prototypes, so entropy minimisation shrank the coefficients (core/suite/README.md, "The cause, found");
    // suite v5: 0.2 (v3-v4: 0.3)
    headMix: 0.2,
    pretextLogitScale: Math.log(10),
    pretrainRowsPerTask: 4000,
    pretrainShards: 2,
    pretext: 'cluster',
    pretextClusters: 16,
  },
  small: {
    size: 'small',
    // for tests of the machinery (determinism, layout, commands): too small to learn much
    model: base({ hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, projectionDim: 16 }),
    pretrain: { steps: 12, batchSize: 32, lr: 2e-3, warmup: 2 },
    finetune: { steps: 4, batchSize: 32, lr: 2e-3, warmup: 1, layerDecay: 0.5 },
    headImagesPerTask: 128,
    headLogitScale: Math.log(10),
    headMix: 0.3,
    pretextLogitScale: Math.log(10),
    pretrainRowsPerTask: 256,
    pretrainShards: 2,
    pretext: 'cluster',
    pretextClusters: 4,
  },
};

/** The heads' kind in suite.json: pure class-mean prototypes, or prototypes mixed with random directions. */
export function headsKind(recipe: Pick<SuiteRecipe, 'headMix'>): 'class-mean-prototypes' | 'mixed-prototypes' {
  return (recipe.headMix ?? 1) < 1 ? 'mixed-prototypes' : 'class-mean-prototypes';
}

/** Learning rate at step t (0-based): linear warm-up, then cosine decay to 10 % of the peak. */
export function learningRate(r: TrainRecipe, t: number): number {
  if (t < r.warmup) return (r.lr * (t + 1)) / r.warmup;
  const span = Math.max(1, r.steps - r.warmup);
  const p = Math.min(1, (t - r.warmup) / span);
  return r.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
}

/** The Hugging Face config.json of a CLIPVisionModelWithProjection with this config. */
export function hfConfigJson(c: ClipVisionConfig): Record<string, unknown> {
  return {
    architectures: ['CLIPVisionModelWithProjection'],
    model_type: 'clip_vision_model',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    image_size: c.imageSize,
    patch_size: c.patchSize,
    num_channels: c.numChannels,
    projection_dim: c.projectionDim,
    layer_norm_eps: c.layerNormEps,
    hidden_act: c.hiddenAct,
    torch_dtype: 'float32',
  };
}

/** The key that seeds a task's mixed-head directions (TaskJob.headKey): its name, or its class names. */
export function headKeyFor(
  recipe: Pick<SuiteRecipe, 'headMixKey'>,
  task: { name: string; classNames: readonly string[] },
): string {
  return recipe.headMixKey === 'labels' ? `labels:${task.classNames.join('|')}` : task.name;
}
