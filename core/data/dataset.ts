/**
 * Task datasets: one safetensors object holding `inputs` [N, C, H, W] (U8 or F32) and optionally `labels` [N]
 * (I64 or I32), plus a small JSON beside it (same URI, `.json` instead of `.safetensors`) with the
 * preprocessing:
 *
 *   { "mean": [per channel], "std": [per channel], "size": [H, W], "classes"?: K, "task"?: "name" }
 *
 * Values handed to a model are, per channel c:
 *   U8 inputs:               (x / 255 - mean[c]) / std[c]   (no JSON: mean 0, std 1, i.e. x / 255)
 *   F32 inputs with a JSON:  (x - mean[c]) / std[c]         (the floats are pixel values on a [0, 1] scale)
 *   F32 inputs, no JSON:     x as stored (already preprocessed)
 * A one-element mean or std applies to every channel.
 *
 * Rows are streamed from the store by byte range: a batch reads only the runs of rows it needs (nearby
 * rows are read together), never the whole file unless asked to cache it.
 */
import { NotFoundError, putObject, readJson, Store, storeFor } from '../store';
import { headerLength, numel, parseHeader, SafetensorsHeader, TensorInfo } from '../safetensors/header';
import { DTYPE_BYTES } from '../safetensors/dtype';
import { writeTensors } from '../safetensors/writer';
import { permutation, rngFor } from './rng';

export class DatasetError extends Error {
  override name = 'DatasetError';
}

export type InputDType = 'U8' | 'F32';
export type LabelDType = 'I64' | 'I32';

export interface Preprocessing {
  /** Per-channel mean on the [0, 1] pixel scale (one value = all channels). */
  mean: number[];
  /** Per-channel standard deviation, > 0 (one value = all channels). */
  std: number[];
  /** Image [H, W]. */
  size: [number, number];
  /** Number of classes; labels must lie in [0, classes). */
  classes?: number;
  /** Task name, for messages and bookkeeping. */
  task?: string;
}

export interface DatasetContent {
  /** U8 pixels (0..255) or F32 values, row-major [N, C, H, W]. */
  inputs: Uint8Array | Float32Array;
  /** [N, C, H, W]. */
  shape: readonly number[];
  /** N integer labels. */
  labels?: ArrayLike<number>;
  /** How labels are stored; I64 (torch's default) unless told. */
  labelDtype?: LabelDType;
  /** Written as the JSON beside the dataset; `size` defaults to the inputs' [H, W]. */
  prep?: Omit<Preprocessing, 'size'> & { size?: [number, number] };
  /** Safetensors __metadata__ (strings only). */
  metadata?: Record<string, string>;
}

export interface WrittenDataset {
  uri: string;
  /** The JSON beside it, or undefined when none was written. */
  jsonUri: string | undefined;
  n: number;
  bytes: number;
  sha256: string;
}

export interface BatchOptions {
  batchSize: number;
  /** Seed of the shuffle; giving a seed turns shuffling on unless `shuffle: false`. */
  seed?: number;
  /** Shuffle the rows (default: true when a seed is given). Without a seed, seed 0 is used. */
  shuffle?: boolean;
  /** Yield at most this many rows in all (the first `limit` of the order). */
  limit?: number;
  /** Skip a last batch smaller than batchSize. */
  dropLast?: boolean;
}

export interface Batch {
  /** Preprocessed [B, C, H, W]. */
  inputs: Float32Array;
  /** B labels, when the dataset has labels. */
  labels?: Int32Array;
  /** Row numbers in the dataset, in batch order. */
  indices: Int32Array;
  shape: [number, number, number, number];
}

export interface OpenOptions {
  /** Store to read through (default: storeFor(uri)). */
  store?: Store;
  /** Read the whole inputs tensor once, on first use, when it is at most this many bytes (default 0: never). */
  cacheBytes?: number;
  /** Rows no further apart than this many bytes are fetched in one read (default 64 KiB). */
  maxGapBytes?: number;
  /** Ranged reads in flight at once within a batch (default 8). */
  concurrency?: number;
}

/** The JSON that sits beside a dataset: test.safetensors -> test.json. */
export function prepUriFor(uri: string): string {
  if (!uri.endsWith('.safetensors')) {
    throw new DatasetError(
      `${uri}: a dataset must be a .safetensors object (its preprocessing sits beside it as .json)`,
    );
  }
  return uri.slice(0, -'.safetensors'.length) + '.json';
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** Check a preprocessing object against the inputs' channels and size; throws naming `source`. */
export function validatePrep(raw: unknown, source: string, chw?: readonly [number, number, number]): Preprocessing {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DatasetError(`${source}: preprocessing must be a JSON object with mean, std and size`);
  }
  const p = raw as Record<string, unknown>;
  const nums = (k: 'mean' | 'std'): number[] => {
    const v = p[k];
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new DatasetError(`${source}: "${k}" must be a non-empty list of finite numbers, one per channel`);
    }
    if (chw && v.length !== 1 && v.length !== chw[0]) {
      throw new DatasetError(`${source}: "${k}" has ${v.length} values but the images have ${chw[0]} channel(s)`);
    }
    return [...(v as number[])];
  };
  const mean = nums('mean');
  const std = nums('std');
  if (std.some((s) => s <= 0)) throw new DatasetError(`${source}: "std" values must be > 0, got ${fmtShape(std)}`);
  let size: [number, number];
  if (p.size === undefined && chw) size = [chw[1], chw[2]];
  else if (Array.isArray(p.size) && p.size.length === 2 && p.size.every(isPosInt)) size = [p.size[0], p.size[1]];
  else throw new DatasetError(`${source}: "size" must be [H, W] with positive integers, got ${JSON.stringify(p.size)}`);
  if (chw && (size[0] !== chw[1] || size[1] !== chw[2])) {
    throw new DatasetError(`${source}: "size" says ${size[0]}x${size[1]} but the images are ${chw[1]}x${chw[2]}`);
  }
  const out: Preprocessing = { mean, std, size };
  if (p.classes !== undefined) {
    if (!isPosInt(p.classes))
      throw new DatasetError(`${source}: "classes" must be a positive integer, got ${JSON.stringify(p.classes)}`);
    out.classes = p.classes;
  }
  if (p.task !== undefined) {
    if (typeof p.task !== 'string') throw new DatasetError(`${source}: "task" must be a string`);
    out.task = p.task;
  }
  return out;
}

function checkLabels(labels: ArrayLike<number>, n: number, classes: number | undefined, source: string): void {
  if (labels.length !== n) {
    throw new DatasetError(`${source}: ${labels.length} labels for ${n} inputs; labels must have length N = ${n}`);
  }
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!Number.isInteger(v) || v < 0 || (classes !== undefined && v >= classes)) {
      const range = classes !== undefined ? `[0, ${classes})` : '[0, 2^31)';
      throw new DatasetError(`${source}: label ${v} at row ${i} is outside ${range}`);
    }
    if (v > 0x7fffffff) throw new DatasetError(`${source}: label ${v} at row ${i} does not fit in int32`);
  }
}

/** Write a dataset (and its preprocessing JSON when `prep` is given). Both objects are published atomically. */
export async function writeDataset(uri: string, content: DatasetContent): Promise<WrittenDataset> {
  const jsonUri = prepUriFor(uri);
  const { inputs, shape } = content;
  let dtype: InputDType;
  if (inputs instanceof Uint8Array) dtype = 'U8';
  else if (inputs instanceof Float32Array) dtype = 'F32';
  else throw new DatasetError(`${uri}: inputs must be a Uint8Array (U8 pixels) or a Float32Array`);
  if (shape.length !== 4 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new DatasetError(`${uri}: inputs shape ${fmtShape(shape)} must be rank 4 [N, C, H, W]`);
  }
  if (numel(shape) !== inputs.length) {
    throw new DatasetError(
      `${uri}: inputs hold ${inputs.length} values but shape ${fmtShape(shape)} needs ${numel(shape)}`,
    );
  }
  const [n, c, h, w] = shape;
  let prep: Preprocessing | undefined;
  if (content.prep)
    prep = validatePrep({ ...content.prep, size: content.prep.size ?? [h, w] }, `${jsonUri} (to write)`, [c, h, w]);
  if (content.labels) checkLabels(content.labels, n, prep?.classes, uri);

  const labelDtype = content.labelDtype ?? 'I64';
  const tensors: { name: string; dtype: 'U8' | 'F32' | 'I64' | 'I32'; shape: number[]; data: Uint8Array }[] = [
    {
      name: 'inputs',
      dtype,
      shape: [n, c, h, w],
      data: new Uint8Array(inputs.buffer, inputs.byteOffset, inputs.byteLength),
    },
  ];
  if (content.labels) {
    const lb = content.labels;
    const bytes = new Uint8Array(n * DTYPE_BYTES[labelDtype]);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      if (labelDtype === 'I64') dv.setBigInt64(i * 8, BigInt(lb[i]), true);
      else dv.setInt32(i * 4, lb[i], true);
    }
    tensors.push({ name: 'labels', dtype: labelDtype, shape: [n], data: bytes });
  }

  const store = storeFor(uri);
  if (prep) {
    await putObject(jsonUri, Buffer.from(JSON.stringify(prep, null, 2) + '\n', 'utf8'));
  } else if (await store.stat(jsonUri)) {
    // a stale JSON from an earlier write would change how these inputs are read
    await store.delete(jsonUri);
  }
  const meta = { format: 'mergeflow-dataset', ...(content.metadata ?? {}) };
  const done = await writeTensors(uri, tensors, meta);
  return { uri, jsonUri: prep ? jsonUri : undefined, n, bytes: done.bytes, sha256: done.sha256 };
}

/** Run up to `limit` async jobs at once. */
async function runLimited(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

export class Dataset {
  /** Byte-range reads made for inputs, and their total bytes (for monitoring and tests). */
  readonly stats = { reads: 0, bytes: 0 };
  private cache: Promise<Uint8Array> | undefined;
  private readonly lut: Float32Array[] | undefined;

  constructor(
    readonly uri: string,
    private readonly store: Store,
    private readonly header: SafetensorsHeader,
    private readonly inputsInfo: TensorInfo,
    /** Preprocessing from the JSON beside the dataset (undefined: none, see `prep` for what is applied). */
    readonly prepFile: Preprocessing | undefined,
    /** Labels as int32 (read once at open), or undefined. */
    readonly labels: Int32Array | undefined,
    private readonly opts: Required<Omit<OpenOptions, 'store'>>,
  ) {
    if (this.dtype === 'U8') {
      const p = this.prep!;
      this.lut = [];
      for (let ch = 0; ch < this.channels; ch++) {
        const m = p.mean.length === 1 ? p.mean[0] : p.mean[ch];
        const s = p.std.length === 1 ? p.std[0] : p.std[ch];
        const t = new Float32Array(256);
        for (let v = 0; v < 256; v++) t[v] = (v / 255 - m) / s;
        this.lut.push(t);
      }
    }
  }

  get dtype(): InputDType {
    return this.inputsInfo.dtype as InputDType;
  }
  /** [N, C, H, W]. */
  get shape(): [number, number, number, number] {
    const s = this.inputsInfo.shape;
    return [s[0], s[1], s[2], s[3]];
  }
  get n(): number {
    return this.inputsInfo.shape[0];
  }
  get channels(): number {
    return this.inputsInfo.shape[1];
  }
  /** [C, H, W]. */
  get imageShape(): [number, number, number] {
    const s = this.inputsInfo.shape;
    return [s[1], s[2], s[3]];
  }
  get hasLabels(): boolean {
    return this.labels !== undefined;
  }
  get classes(): number | undefined {
    return this.prepFile?.classes;
  }
  /**
   * The preprocessing applied: the JSON's, or for U8 inputs without one mean 0 / std 1 (x / 255);
   * undefined for F32 inputs without one (values are used as stored).
   */
  get prep(): Preprocessing | undefined {
    if (this.prepFile) return this.prepFile;
    if (this.dtype === 'U8') return { mean: [0], std: [1], size: [this.shape[2], this.shape[3]] };
    return undefined;
  }
  private get rowBytes(): number {
    return numel(this.imageShape) * DTYPE_BYTES[this.dtype];
  }

  /** The row order batches() walks for these options. */
  order(opts: Pick<BatchOptions, 'seed' | 'shuffle' | 'limit'> = {}): Int32Array {
    const shuffle = opts.shuffle ?? opts.seed !== undefined;
    let idx: Int32Array;
    if (shuffle) idx = permutation(this.n, rngFor(opts.seed ?? 0, 'dataset-order'));
    else idx = Int32Array.from({ length: this.n }, (_, i) => i);
    if (opts.limit !== undefined) {
      if (!Number.isSafeInteger(opts.limit) || opts.limit < 0)
        throw new DatasetError(`${this.uri}: limit must be a non-negative integer, got ${opts.limit}`);
      idx = idx.subarray(0, Math.min(opts.limit, this.n));
    }
    return idx;
  }

  /** Number of batches batches(opts) yields. */
  numBatches(opts: BatchOptions): number {
    const rows = this.order(opts).length;
    return opts.dropLast ? Math.floor(rows / opts.batchSize) : Math.ceil(rows / opts.batchSize);
  }

  /** Preprocessed batches in a (seeded) order; the next batch is fetched while the caller works on this one. */
  async *batches(opts: BatchOptions): AsyncGenerator<Batch> {
    if (!isPosInt(opts.batchSize))
      throw new DatasetError(`${this.uri}: batchSize must be a positive integer, got ${opts.batchSize}`);
    const order = this.order(opts);
    const bs = opts.batchSize;
    const count = this.numBatches(opts);
    const load = (b: number): Promise<Batch> =>
      this.readRows(order.subarray(b * bs, Math.min(order.length, (b + 1) * bs)));
    let pending: Promise<Batch> | undefined = count > 0 ? load(0) : undefined;
    try {
      for (let b = 0; b < count; b++) {
        const cur: Batch = await pending!;
        pending = b + 1 < count ? load(b + 1) : undefined;
        yield cur;
      }
    } finally {
      // the caller stopped early: do not leave a rejected prefetch unhandled
      pending?.catch(() => undefined);
    }
  }

  /** Read and preprocess the given rows (any order, repeats allowed). */
  async readRows(indices: ArrayLike<number>): Promise<Batch> {
    const [, c, h, w] = this.shape;
    const B = indices.length;
    const idx = Int32Array.from(indices);
    for (let i = 0; i < B; i++) {
      if (idx[i] < 0 || idx[i] >= this.n || idx[i] !== indices[i]) {
        throw new DatasetError(`${this.uri}: row ${indices[i]} is out of range [0, ${this.n})`);
      }
    }
    const per = c * h * w;
    const out = new Float32Array(B * per);
    const rowBytes = this.rowBytes;
    const put = (pos: number, src: Uint8Array, off: number): void => this.convertRow(src, off, out, pos * per);

    const whole = await this.cached();
    if (whole) {
      for (let i = 0; i < B; i++) put(i, whole, idx[i] * rowBytes);
    } else {
      // sort positions by row, group into runs whose gaps are small, one ranged read per run
      const pos = Array.from({ length: B }, (_, i) => i).sort((a, b) => idx[a] - idx[b] || a - b);
      const gapRows = Math.floor(this.opts.maxGapBytes / Math.max(1, rowBytes));
      const runs: { first: number; last: number; members: number[] }[] = [];
      for (const p of pos) {
        const r = idx[p];
        const cur = runs[runs.length - 1];
        if (cur && r - cur.last <= 1 + gapRows) {
          cur.last = r;
          cur.members.push(p);
        } else runs.push({ first: r, last: r, members: [p] });
      }
      const base = this.header.dataStart + this.inputsInfo.begin;
      await runLimited(
        runs.map((run) => async () => {
          const len = (run.last - run.first + 1) * rowBytes;
          const bytes = await this.store.read(this.uri, base + run.first * rowBytes, len);
          this.stats.reads++;
          this.stats.bytes += len;
          for (const p of run.members) put(p, bytes, (idx[p] - run.first) * rowBytes);
        }),
        this.opts.concurrency,
      );
    }
    const batch: Batch = { inputs: out, indices: idx, shape: [B, c, h, w] };
    if (this.labels) {
      const lb = new Int32Array(B);
      for (let i = 0; i < B; i++) lb[i] = this.labels[idx[i]];
      batch.labels = lb;
    }
    return batch;
  }

  private cached(): Promise<Uint8Array | undefined> {
    const size = this.inputsInfo.end - this.inputsInfo.begin;
    if (size > this.opts.cacheBytes) return Promise.resolve(undefined);
    if (!this.cache) {
      this.cache = this.store.read(this.uri, this.header.dataStart + this.inputsInfo.begin, size).then((b) => {
        this.stats.reads++;
        this.stats.bytes += size;
        return b;
      });
      this.cache.catch(() => (this.cache = undefined));
    }
    return this.cache;
  }

  private convertRow(src: Uint8Array, off: number, out: Float32Array, o: number): void {
    const [, c, h, w] = this.shape;
    const plane = h * w;
    if (this.lut) {
      for (let ch = 0; ch < c; ch++) {
        const t = this.lut[ch];
        const s0 = off + ch * plane;
        const o0 = o + ch * plane;
        for (let k = 0; k < plane; k++) out[o0 + k] = t[src[s0 + k]];
      }
      return;
    }
    // F32: copy the little-endian bytes straight into the (aligned) output, then normalise in place
    new Uint8Array(out.buffer, out.byteOffset + o * 4, c * plane * 4).set(src.subarray(off, off + c * plane * 4));
    const p = this.prepFile;
    if (!p) return;
    for (let ch = 0; ch < c; ch++) {
      const m = p.mean.length === 1 ? p.mean[0] : p.mean[ch];
      const s = p.std.length === 1 ? p.std[0] : p.std[ch];
      const o0 = o + ch * plane;
      for (let k = 0; k < plane; k++) out[o0 + k] = (out[o0 + k] - m) / s;
    }
  }
}

/** Open a dataset: reads the safetensors header, the JSON beside it, and the labels; inputs stay in the store. */
export async function openDataset(uri: string, opts: OpenOptions = {}): Promise<Dataset> {
  const jsonUri = prepUriFor(uri);
  const store = opts.store ?? storeFor(uri);
  const st = await store.stat(uri);
  if (!st) throw new NotFoundError(`${uri}: dataset not found; check the path or S3 key`);
  const first = await store.read(uri, 0, Math.min(st.size, 64 * 1024));
  const hl = headerLength(first, uri, st.size);
  const json = 8 + hl <= first.byteLength ? first.subarray(8, 8 + hl) : await store.read(uri, 8, hl);
  const header = parseHeader(json, uri, st.size);

  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const inputs = byName.get('inputs');
  if (!inputs) {
    const names = header.tensors.map((t) => t.name).join(', ') || 'none';
    throw new DatasetError(`${uri}: no 'inputs' tensor (found: ${names}); a dataset needs inputs [N, C, H, W]`);
  }
  if (inputs.dtype !== 'U8' && inputs.dtype !== 'F32') {
    throw new DatasetError(
      `${uri}: 'inputs' is ${inputs.dtype}; only U8 (pixels) and F32 (preprocessed) inputs are read`,
    );
  }
  if (inputs.shape.length !== 4) {
    throw new DatasetError(
      `${uri}: 'inputs' has shape ${fmtShape(inputs.shape)} (rank ${inputs.shape.length}); expected rank 4 [N, C, H, W]`,
    );
  }
  const [n, c, h, w] = inputs.shape;
  if (c === 0 || h === 0 || w === 0)
    throw new DatasetError(`${uri}: 'inputs' has an empty image shape ${fmtShape(inputs.shape)}`);

  let prep: Preprocessing | undefined;
  if (await store.stat(jsonUri)) {
    const raw = await readJson(jsonUri, (why) => new DatasetError(`${jsonUri}: not valid JSON (${why})`));
    prep = validatePrep(raw, jsonUri, [c, h, w]);
  }

  let labels: Int32Array | undefined;
  const lt = byName.get('labels');
  if (lt) {
    if (lt.dtype !== 'I64' && lt.dtype !== 'I32')
      throw new DatasetError(`${uri}: 'labels' is ${lt.dtype}; expected I64 or I32`);
    if (lt.shape.length !== 1)
      throw new DatasetError(`${uri}: 'labels' has shape ${fmtShape(lt.shape)}; expected [N] = [${n}]`);
    if (lt.shape[0] !== n)
      throw new DatasetError(`${uri}: ${lt.shape[0]} labels for ${n} inputs; labels must have length N = ${n}`);
    const bytes = await store.read(uri, header.dataStart + lt.begin, lt.end - lt.begin);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (lt.dtype === 'I32') labels[i] = dv.getInt32(i * 4, true);
      else {
        const lo = dv.getInt32(i * 8, true);
        const hi = dv.getInt32(i * 8 + 4, true);
        if (hi !== (lo < 0 ? -1 : 0))
          throw new DatasetError(`${uri}: label ${dv.getBigInt64(i * 8, true)} at row ${i} does not fit in int32`);
        labels[i] = lo;
      }
    }
    checkLabels(labels, n, prep?.classes, uri);
  }

  return new Dataset(uri, store, header, inputs, prep, labels, {
    cacheBytes: opts.cacheBytes ?? 0,
    maxGapBytes: opts.maxGapBytes ?? 64 * 1024,
    concurrency: Math.max(1, opts.concurrency ?? 8),
  });
}

/** Throw a clear error when a dataset's images are not the [C, H, W] a model expects. */
export function checkImageSize(
  ds: Pick<Dataset, 'uri' | 'imageShape'>,
  expected: readonly [number, number, number] | readonly number[],
): void {
  const got = ds.imageShape;
  if (expected.length !== 3 || got.some((d, i) => d !== expected[i])) {
    throw new DatasetError(
      `${ds.uri}: images are ${got.join('x')} (CxHxW) but the model expects ${expected.join('x')}`,
    );
  }
}
