/** Fixtures of the tiny CLIP ViT shared by the Frank-Wolfe tests: an in-memory head and a seeded labeled batch. */
import * as tf from '@tensorflow/tfjs-core';
import { ClassificationHead, makeHead } from '../../core/models/head';
import { normalish, rngFor } from '../../core/data/rng';
import { CLASSES, TINY, tinyHeadValues } from '../../core/synthetic_adamerging';

/** Task k's head (seeded) as tensors. */
export function tinyMemHead(seed: number, k: number): ClassificationHead {
  const h = tinyHeadValues(seed, k, TINY);
  return makeHead(tf.tensor2d(h.weight, [CLASSES, TINY.projectionDim]), { logitScale: h.logitScale });
}

/** n seeded 8×8 inputs with labels, batch b of task k. */
export function tinyLabeledBatch(seed: number, k: number, b: number, n: number) {
  const rng = rngFor(seed, 'x', k, b);
  return {
    inputs: Float32Array.from({ length: n * 64 }, () => normalish(rng)),
    shape: [n, 1, 8, 8] as [number, number, number, number],
    labels: Int32Array.from({ length: n }, () => Math.floor(rng() * CLASSES)),
  };
}
