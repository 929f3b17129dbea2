/**
 * Training the suite's tiny CLIP-style ViT with TensorFlow.js: deterministic parameter initialisation,
 * preprocessing identical to the dataset loader's, cross-entropy through a CLIP-style head, Adam with a
 * warm-up + cosine schedule, and class-mean ("zero-shot-like") head fitting.
 *
 * Reproducibility: every random choice (initial weights, the order of the training rows) comes from a
 * mulberry32 stream derived from the seed and a purpose label; the tensor math runs on one backend in one
 * thread (the wasm and cpu kernels are sequential, so reductions always run in the same order).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../tensor/gradients';
import { clipVisionForward, ClipVisionConfig, clipVisionParamShapes, Params } from '../models/clip_vit';
import { ClassificationHead, headLogits, makeHead } from '../models/head';
import { normalish, permutation, Rng, rngFor } from '../data/rng';
import { TASK_PREP } from '../data/tasks';
import { learningRate, TrainRecipe } from './recipe';

/** Plain parameter values keyed by Hugging Face name (what crosses threads and gets written). */
export type ParamValues = Record<string, Float32Array>;

/** Initial weights, a function of (config, seed) only. Linear weights ~ N(0, 1/fan_in), layer norms 1/0. */
export function initParams(c: ClipVisionConfig, seed: number): ParamValues {
  const out: ParamValues = {};
  const residualScale = 1 / Math.sqrt(2 * c.numHiddenLayers);
  for (const { name, shape } of clipVisionParamShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    const isNorm = /layer_?norm|layrnorm/.test(name);
    if (isNorm) {
      if (leaf === 'weight') v.fill(1);
    } else if (leaf === 'bias') {
      // zeros
    } else {
      let std: number;
      if (name.endsWith('class_embedding') || name.endsWith('position_embedding.weight')) std = 0.5;
      else {
        const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
        std = 1 / Math.sqrt(fanIn);
        if (name.endsWith('out_proj.weight') || name.endsWith('fc2.weight')) std *= residualScale;
      }
      const rng = rngFor(seed, 'init', name);
      for (let i = 0; i < n; i++) v[i] = std * normalish(rng);
    }
    out[name] = v;
  }
  return out;
}

/** U8 pixel -> model input, exactly as core/data's loader computes it for TASK_PREP (one channel). */
const LUT: Float32Array = (() => {
  const t = new Float32Array(256);
  const m = TASK_PREP.mean[0];
  const s = TASK_PREP.std[0];
  for (let v = 0; v < 256; v++) t[v] = (v / 255 - m) / s;
  return t;
})();

/** Preprocessed float pixels for the given rows of a U8 [N, C, H, W] array. */
export function rowsToFloat(images: Uint8Array, rowSize: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  for (let i = 0; i < rows.length; i++) {
    const o = rows[i] * rowSize;
    for (let k = 0; k < rowSize; k++) out[i * rowSize + k] = LUT[images[o + k]];
  }
  return out;
}

/** Mean cross-entropy of logits [N, K] against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const z = tf.sub(logits, tf.max(logits, 1, true));
    const lse = tf.log(tf.sum(tf.exp(z), 1));
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), k), 'float32');
    const picked = tf.sum(tf.mul(z, onehot), 1);
    return tf.mean(tf.sub(lse, picked)) as tf.Scalar;
  });
}

/** Adam whose learning rate can change between steps (the schedule). */
class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

/** An endless stream of row indices: one seeded permutation per epoch. */
function rowStream(n: number, seed: number, purpose: readonly (string | number)[]): () => number {
  let epoch = 0;
  let perm = permutation(n, rngFor(seed, ...purpose, 'epoch', epoch));
  let pos = 0;
  return () => {
    if (pos === n) {
      epoch++;
      perm = permutation(n, rngFor(seed, ...purpose, 'epoch', epoch));
      pos = 0;
    }
    return perm[pos++];
  };
}

export interface HeadValues {
  /** [classes, dim], row-major. */
  weight: Float32Array;
  classes: number;
  dim: number;
  /** log of the scale. */
  logitScale: number;
  /** Optional per-class bias [classes] (frozen). */
  bias?: Float32Array;
}

export interface TrainSet {
  /** U8 pixels [n, C, H, W]. */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
}

export interface TrainJob {
  config: ClipVisionConfig;
  params: ParamValues;
  data: TrainSet;
  /** The head the loss goes through; frozen unless `trainHead`. */
  head: HeadValues;
  trainHead?: boolean;
  recipe: TrainRecipe;
  seed: number;
  /** Labels that make this job's random streams its own (e.g. ['finetune', task]). */
  purpose: readonly (string | number)[];
  onStep?: (step: number, total: number, loss: number) => void;
}

export interface TrainResult {
  params: ParamValues;
  head: HeadValues;
  /** Mean loss over the first and last tenth of the steps. */
  lossStart: number;
  lossEnd: number;
}

/**
 * One training run's state: the weights as tf variables, the optimisers (one per learning-rate group), the
 * seeded row stream. A step is either taken whole (`step`) or split into a fixed number of shards whose
 * gradients are computed separately (possibly in different threads: `shardGrads`), averaged in shard order
 * and applied everywhere alike (`applyGrads`): data-parallel training whose result depends only on the shard
 * count, never on how many threads computed the shards.
 */
export class Trainer {
  private readonly vars: Record<string, tf.Variable> = {};
  private readonly headW: tf.Variable;
  private readonly headB: tf.Tensor1D | undefined;
  private readonly head: ClassificationHead;
  private readonly groups = new Map<number, { vars: tf.Variable[]; opt: ScheduledAdam }>();
  private readonly varList: tf.Variable[];
  private readonly next: () => number;
  private readonly rowSize: number;
  private readonly decay: number;
  readonly losses: number[] = [];
  private rows: Int32Array | undefined;
  private rowsStep = -1;

  constructor(readonly job: TrainJob) {
    const c = job.config;
    this.rowSize = c.numChannels * c.imageSize * c.imageSize;
    if (job.data.images.length !== job.data.n * this.rowSize) {
      throw new Error(`training data holds ${job.data.images.length} bytes, expected ${job.data.n} x ${this.rowSize}`);
    }
    const shapes = clipVisionParamShapes(c);
    for (const { name, shape } of shapes) this.vars[name] = tf.variable(tf.tensor(job.params[name], shape, 'float32'));
    this.headW = tf.variable(tf.tensor2d(job.head.weight, [job.head.classes, job.head.dim]), !!job.trainHead);
    this.headB = job.head.bias ? tf.tensor1d(job.head.bias) : undefined;
    this.head = makeHead(this.headW as unknown as tf.Tensor2D, { logitScale: job.head.logitScale, bias: this.headB });
    // layer-wise learning-rate decay: depth 0 = output side, L+1 = embeddings
    const L = c.numHiddenLayers;
    this.decay = job.recipe.layerDecay ?? 1;
    const depthOf = (name: string): number => {
      const m = /\.encoder\.layers\.(\d+)\./.exec(name);
      if (m) return L - Number(m[1]);
      if (name.includes('.embeddings.') || name.includes('pre_layrnorm')) return L + 1;
      return 0; // post_layernorm, visual_projection
    };
    const group = (depth: number) => {
      let g = this.groups.get(depth);
      if (!g) this.groups.set(depth, (g = { vars: [], opt: new ScheduledAdam(job.recipe.lr, 0.9, 0.999, 1e-8) }));
      return g;
    };
    for (const { name } of shapes) group(this.decay === 1 ? 0 : depthOf(name)).vars.push(this.vars[name]);
    if (job.trainHead) group(0).vars.push(this.headW);
    this.varList = [...this.groups.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, g]) => g.vars);
    this.next = rowStream(job.data.n, job.seed, job.purpose);
  }

  /** The batch rows of step t (steps must be visited in order). */
  private batchRows(t: number): Int32Array {
    if (this.rowsStep !== t) {
      if (t !== this.rowsStep + 1) throw new Error(`training steps out of order: ${t} after ${this.rowsStep}`);
      this.rows = Int32Array.from({ length: this.job.recipe.batchSize }, this.next);
      this.rowsStep = t;
    }
    return this.rows!;
  }

  /** Loss and gradients (tf tensors keyed by variable name) on the given rows. */
  private lossAndGrads(rows: Int32Array): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const c = this.job.config;
    const labels = Int32Array.from(rows, (r) => this.job.data.labels[r]);
    const x = tf.tensor4d(rowsToFloat(this.job.data.images, this.rowSize, rows), [
      rows.length,
      c.numChannels,
      c.imageSize,
      c.imageSize,
    ]);
    try {
      return tf.variableGrads(() => {
        const emb = clipVisionForward(this.vars as Params, c, x);
        return crossEntropy(headLogits(this.head, emb), labels);
      }, this.varList);
    } finally {
      x.dispose();
    }
  }

  private apply(grads: tf.NamedTensorMap, t: number, loss: number): void {
    if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${t} (loss ${loss})`);
    const lr = learningRate(this.job.recipe, t);
    for (const [depth, g] of [...this.groups.entries()].sort((a, b) => a[0] - b[0])) {
      g.opt.setLearningRate(lr * this.decay ** depth);
      g.opt.applyGradients(g.vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
    }
    this.losses.push(loss);
  }

  /** One whole step t; returns the loss. */
  step(t: number): number {
    const { value, grads } = this.lossAndGrads(this.batchRows(t));
    const loss = value.dataSync()[0];
    value.dispose();
    try {
      this.apply(grads, t, loss);
    } finally {
      tf.dispose(grads);
    }
    return loss;
  }

  /** Gradients of shard `shard` of `shards` of step t, as plain arrays in variable order, and its loss. */
  shardGrads(t: number, shard: number, shards: number): { loss: number; grads: Float32Array[] } {
    const rows = this.batchRows(t);
    const per = Math.ceil(rows.length / shards);
    const part = rows.subarray(shard * per, Math.min(rows.length, (shard + 1) * per));
    const { value, grads } = this.lossAndGrads(part);
    const loss = value.dataSync()[0];
    value.dispose();
    const out = this.varList.map((v) => Float32Array.from(grads[v.name].dataSync() as Float32Array));
    tf.dispose(grads);
    return { loss, grads: out };
  }

  /** Apply gradients already averaged over the shards (variable order) for step t. */
  applyGrads(t: number, grads: Float32Array[], loss: number): void {
    const named: tf.NamedTensorMap = {};
    this.varList.forEach((v, i) => (named[v.name] = tf.tensor(grads[i], v.shape, 'float32')));
    try {
      this.apply(named, t, loss);
    } finally {
      tf.dispose(named);
    }
  }

  result(): TrainResult {
    const params: ParamValues = {};
    for (const { name } of clipVisionParamShapes(this.job.config))
      params[name] = Float32Array.from(this.vars[name].dataSync() as Float32Array);
    const tenth = Math.max(1, Math.floor(this.losses.length / 10));
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
    return {
      params,
      head: { ...this.job.head, weight: Float32Array.from(this.headW.dataSync()) },
      lossStart: mean(this.losses.slice(0, tenth)),
      lossEnd: mean(this.losses.slice(-tenth)),
    };
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
    this.headW.dispose();
    this.headB?.dispose();
    for (const g of this.groups.values()) g.opt.dispose();
  }
}

/** Average per-shard gradients (variable order) in shard order: the same bytes wherever the shards ran. */
export function averageShardGrads(parts: readonly Float32Array[][]): Float32Array[] {
  const k = parts.length;
  return parts[0].map((_, vi) => {
    const out = new Float32Array(parts[0][vi].length);
    for (let i = 0; i < out.length; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += parts[p][vi][i];
      out[i] = s / k;
    }
    return out;
  });
}

/** Train the encoder (and optionally the head) with cross-entropy, whole steps in this thread. */
export function trainEncoder(job: TrainJob): TrainResult {
  const tr = new Trainer(job);
  try {
    for (let t = 0; t < job.recipe.steps; t++) job.onStep?.(t + 1, job.recipe.steps, tr.step(t));
    return tr.result();
  } finally {
    tr.dispose();
  }
}

/** The same training with each step split into `shards` shards, all computed in this thread. */
export function trainEncoderSharded(job: TrainJob, shards: number): TrainResult {
  const tr = new Trainer(job);
  try {
    for (let t = 0; t < job.recipe.steps; t++) {
      const parts = Array.from({ length: shards }, (_, s) => tr.shardGrads(t, s, shards));
      const loss = parts.reduce((a, p) => a + p.loss, 0) / shards;
      tr.applyGrads(t, averageShardGrads(parts.map((p) => p.grads)), loss);
      job.onStep?.(t + 1, job.recipe.steps, loss);
    }
    return tr.result();
  } finally {
    tr.dispose();
  }
}

/** Embeddings [n, dim] of the given rows, in batches. */
export function embedRows(
  c: ClipVisionConfig,
  params: Params,
  images: Uint8Array,
  rows: ArrayLike<number>,
  batchSize = 256,
): Float32Array {
  const rowSize = c.numChannels * c.imageSize * c.imageSize;
  const out = new Float32Array(rows.length * c.projectionDim);
  for (let b = 0; b < rows.length; b += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, rows.length - b) }, (_, i) => rows[b + i]);
    const x = tf.tensor4d(rowsToFloat(images, rowSize, idx), [idx.length, c.numChannels, c.imageSize, c.imageSize]);
    const e = clipVisionForward(params, c, x);
    out.set(e.dataSync(), b * c.projectionDim);
    x.dispose();
    e.dispose();
  }
  return out;
}

/**
 * A CLIP-style "zero-shot-like" head: per class, the mean of the L2-normalised embeddings of that class's
 * images, L2-normalised again. Computed in float64 in row order, so it is deterministic.
 */
export function prototypeHead(
  emb: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
  dim: number,
  logitScale: number,
  centre = false,
): HeadValues {
  const sums = new Float64Array(classes * dim);
  for (let i = 0; i < labels.length; i++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) norm += emb[i * dim + k] ** 2;
    norm = Math.max(Math.sqrt(norm), 1e-12);
    const y = labels[i];
    for (let k = 0; k < dim; k++) sums[y * dim + k] += emb[i * dim + k] / norm;
  }
  const weight = new Float32Array(classes * dim);
  const means = new Float64Array(classes * dim);
  for (let y = 0; y < classes; y++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) norm += sums[y * dim + k] ** 2;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let k = 0; k < dim; k++) means[y * dim + k] = sums[y * dim + k] / norm;
  }
  if (centre) {
    // subtract the mean prototype: what all classes share says nothing about which class an image is
    for (let k = 0; k < dim; k++) {
      let m = 0;
      for (let y = 0; y < classes; y++) m += means[y * dim + k];
      m /= classes;
      for (let y = 0; y < classes; y++) sums[y * dim + k] = means[y * dim + k] - m;
    }
  }
  for (let y = 0; y < classes; y++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) norm += sums[y * dim + k] ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue; // a class with no images: an all-zero row (logit 0)
    for (let k = 0; k < dim; k++) weight[y * dim + k] = sums[y * dim + k] / norm;
  }
  return { weight, classes, dim, logitScale };
}

/** Each row: normalise(mix · prototype row + (1 − mix) · a random unit vector). */
export function mixedHead(head: HeadValues, mix: number, rng: Rng): HeadValues {
  const { classes, dim } = head;
  const weight = new Float32Array(classes * dim);
  for (let y = 0; y < classes; y++) {
    const r = Float64Array.from({ length: dim }, () => normalish(rng));
    const rn = Math.sqrt(r.reduce((a, v) => a + v * v, 0));
    const row = Float64Array.from({ length: dim }, (_, k) => mix * head.weight[y * dim + k] + ((1 - mix) * r[k]) / rn);
    const n = Math.sqrt(row.reduce((a, v) => a + v * v, 0));
    for (let k = 0; k < dim; k++) weight[y * dim + k] = row[k] / n;
  }
  return { ...head, weight };
}

/** A random initial head (for the pretext task), rows ~ N(0, 1/dim). */
export function randomHead(classes: number, dim: number, logitScale: number, rng: Rng): HeadValues {
  const weight = new Float32Array(classes * dim);
  for (let i = 0; i < weight.length; i++) weight[i] = normalish(rng) / Math.sqrt(dim);
  return { weight, classes, dim, logitScale };
}

/** tf tensors for plain values (the caller disposes them). */
export function toTensors(c: ClipVisionConfig, values: ParamValues): Params {
  const out: Params = {};
  for (const { name, shape } of clipVisionParamShapes(c)) out[name] = tf.tensor(values[name], shape, 'float32');
  return out;
}
