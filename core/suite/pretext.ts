/**
 * The generic pretraining objective ("playing CLIP"). The pretrained encoder is trained over the pooled
 * training images of all 24 tasks with a label space that is none of the tasks' own:
 *
 * - `domain`: predict the image DOMAIN, i.e. the source and the transform applied (mnist/none, mnist/rot90,
 *   fashion/invert, mnist/noise, ...). Tasks whose images look alike share a domain (digits, digits-parity,
 *   digits-ge5, ... are all mnist/none).
 * - `rotation`: (domain, quarter turn): each image is also turned by a seeded random multiple of 90 degrees
 *   and the turn is predicted too (RotNet-style).
 * - `cluster`: (domain, cluster), DeepCluster-style pseudo-labels: within each domain, k-means (seeded
 *   k-means++, fixed iterations, float64) on 2x2-pooled pixels groups the images into K clusters, and the
 *   encoder learns to tell the clusters apart. Clusters come from pixels alone, never from task labels.
 *
 * The pretext head (trainable, CLIP-style on the normalised embedding) is discarded after pretraining.
 */
import { TaskData, TASKS } from '../data/tasks';
import { randInt, Rng } from '../data/rng';
import type { TrainSet } from './train';

export type PretextMode = 'domain' | 'rotation' | 'cluster';

export const PRETEXT_DESCRIPTIONS: Record<PretextMode, string> = {
  domain:
    'predict the image domain (source + transform, e.g. mnist/none, mnist/rot90, fashion/invert) over the pooled train images of all 24 tasks',
  rotation:
    'predict (image domain, quarter turn) over the pooled train images of all 24 tasks, each turned by a seeded random multiple of 90 degrees',
  cluster:
    'predict (image domain, k-means cluster) over the pooled train images of all 24 tasks: DeepCluster-style pseudo-labels from seeded k-means on 2x2-pooled pixels within each domain (no task labels)',
};

/** Domain name of an image: '<source>/<transform>'. `source-id` images are plain digits or plain clothes. */
export function domainName(task: { source: string; transform: string }, originSource: number): string {
  const src = task.source === 'mixed' ? (originSource === 0 ? 'mnist' : 'fashion') : task.source;
  return `${src}/${task.transform}`;
}

/** Every domain of the 24 tasks, sorted. */
export const DOMAINS: readonly string[] = (() => {
  const s = new Set<string>();
  for (const t of TASKS) {
    if (t.source === 'mixed') {
      s.add(domainName(t, 0));
      s.add(domainName(t, 1));
    } else s.add(domainName(t, 0));
  }
  return [...s].sort();
})();

export interface PretextOptions {
  mode: PretextMode;
  rowsPerTask: number;
  /** k-means clusters per domain (mode 'cluster'). */
  clusters?: number;
  /** Images per domain k-means is fitted on (mode 'cluster'); all are then assigned. */
  clusterFitRows?: number;
  rng: Rng;
}

/** The pretext label names for a mode. */
export function pretextClasses(mode: PretextMode, clusters = 0): string[] {
  if (mode === 'domain') return [...DOMAINS];
  if (mode === 'rotation') return DOMAINS.flatMap((d) => [0, 90, 180, 270].map((r) => `${d}@${r}`));
  return DOMAINS.flatMap((d) => Array.from({ length: clusters }, (_, k) => `${d}#${k}`));
}

/** Rotate a square single-plane image by k quarter turns clockwise into dst. */
function rotate(src: Uint8Array, so: number, dst: Uint8Array, d0: number, side: number, k: number): void {
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let sy = y;
      let sx = x;
      if (k === 1) [sy, sx] = [side - 1 - x, y];
      else if (k === 2) [sy, sx] = [side - 1 - y, side - 1 - x];
      else if (k === 3) [sy, sx] = [x, side - 1 - y];
      dst[d0 + y * side + x] = src[so + sy * side + sx];
    }
  }
}

/** 2x2 mean-pooled pixels of image i (side/2 squared values, float64). */
function pooled(images: Uint8Array, i: number, side: number, out: Float64Array, o: number): void {
  const h = side >> 1;
  const base = i * side * side;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < h; x++) {
      const k = base + 2 * y * side + 2 * x;
      out[o + y * h + x] = (images[k] + images[k + 1] + images[k + side] + images[k + side + 1]) / 4;
    }
  }
}

function sqDist(a: Float64Array, ao: number, b: Float64Array, bo: number, d: number): number {
  let s = 0;
  for (let k = 0; k < d; k++) {
    const t = a[ao + k] - b[bo + k];
    s += t * t;
  }
  return s;
}

/**
 * Seeded k-means (k-means++ init, `iters` Lloyd steps) on rows of x [n, d]; returns the centres [k, d].
 * Pure float64 arithmetic in a fixed order: the same input gives the same centres everywhere.
 */
export function kmeans(x: Float64Array, n: number, d: number, k: number, rng: Rng, iters = 12): Float64Array {
  const c = new Float64Array(k * d);
  const first = randInt(rng, n);
  c.set(x.subarray(first * d, first * d + d), 0);
  const best = new Float64Array(n).fill(Infinity);
  for (let j = 1; j < k; j++) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      best[i] = Math.min(best[i], sqDist(x, i * d, c, (j - 1) * d, d));
      total += best[i];
    }
    let r = rng() * total;
    let pick = n - 1;
    for (let i = 0; i < n; i++) {
      r -= best[i];
      if (r < 0) {
        pick = i;
        break;
      }
    }
    c.set(x.subarray(pick * d, pick * d + d), j * d);
  }
  const assign = new Int32Array(n);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < n; i++) assign[i] = nearest(x, i * d, c, k, d);
    const sums = new Float64Array(k * d);
    const counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const a = assign[i];
      counts[a]++;
      for (let t = 0; t < d; t++) sums[a * d + t] += x[i * d + t];
    }
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) continue; // an empty cluster keeps its centre
      for (let t = 0; t < d; t++) c[j * d + t] = sums[j * d + t] / counts[j];
    }
  }
  return c;
}

function nearest(x: Float64Array, xo: number, c: Float64Array, k: number, d: number): number {
  let bi = 0;
  let bd = Infinity;
  for (let j = 0; j < k; j++) {
    const s = sqDist(x, xo, c, j * d, d);
    if (s < bd) {
      bd = s;
      bi = j;
    }
  }
  return bi;
}

/**
 * Pooled pretraining set: the first `rowsPerTask` train rows of every task, labelled as the mode says.
 * Returns the set and the label names.
 */
export function pretextSet(tasks: readonly TaskData[], opts: PretextOptions): { set: TrainSet; classes: string[] } {
  const first = tasks[0]?.train;
  const per = first ? first.images.length / Math.max(1, first.n) : 0;
  const side = Math.round(Math.sqrt(per));
  if (side * side !== per) throw new Error('the pretext needs square one-channel images');
  const total = tasks.reduce((a, t) => a + Math.min(opts.rowsPerTask, t.train.n), 0);
  const images = new Uint8Array(total * per);
  const labels = new Int32Array(total);
  const domainOf = new Int32Array(total);
  let o = 0;
  for (const t of tasks) {
    const m = Math.min(opts.rowsPerTask, t.train.n);
    for (let i = 0; i < m; i++) {
      const dom = DOMAINS.indexOf(domainName(t.task, t.train.origin.source[i]));
      domainOf[o + i] = dom;
      if (opts.mode === 'rotation') {
        const k = randInt(opts.rng, 4);
        rotate(t.train.images, i * per, images, (o + i) * per, side, k);
        labels[o + i] = dom * 4 + k;
      } else {
        images.set(t.train.images.subarray(i * per, (i + 1) * per), (o + i) * per);
        labels[o + i] = dom;
      }
    }
    o += m;
  }
  if (opts.mode === 'cluster') {
    const K = opts.clusters ?? 16;
    const fitRows = opts.clusterFitRows ?? 2000;
    const d = (side >> 1) ** 2;
    const feats = new Float64Array(total * d);
    for (let i = 0; i < total; i++) pooled(images, i, side, feats, i * d);
    for (let dom = 0; dom < DOMAINS.length; dom++) {
      const rows: number[] = [];
      for (let i = 0; i < total; i++) if (domainOf[i] === dom) rows.push(i);
      if (!rows.length) continue;
      const fitN = Math.min(fitRows, rows.length);
      const fit = new Float64Array(fitN * d);
      for (let j = 0; j < fitN; j++) fit.set(feats.subarray(rows[j] * d, rows[j] * d + d), j * d);
      const centres = kmeans(fit, fitN, d, Math.min(K, fitN), opts.rng);
      for (const i of rows) labels[i] = dom * K + nearest(feats, i * d, centres, Math.min(K, fitN), d);
    }
  }
  return { set: { images, labels, n: total }, classes: pretextClasses(opts.mode, opts.clusters ?? 16) };
}
