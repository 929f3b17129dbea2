/**
 * Streaming a shard's tensors from every input at once, in element chunks, with one read of each input:
 *  - the order of every span the merge will ask of an input is known up front (the shard's tensors in order,
 *    each in chunks), so each input's reads are planned as windows: runs of consecutive spans packed up to a
 *    buffer's size, so the small neighbouring tensors of a shard come in one read;
 *  - each input has two read buffers: while the merge works on the window in one, the next window is read
 *    into the other (read-ahead), so reading overlaps merging;
 *  - large tensors go in chunks whose size depends on a fixed memory budget divided by the number of inputs,
 *    so memory stays flat however many models are merged and however large the largest tensor is;
 *  - every byte handed to the merge is hashed on the way (BLAKE3 per input file, in the shard's tensor order),
 *    on a thread of its own (input_hasher.ts): the digests of all shards, combined, stand for the inputs in the
 *    manifest, without a separate pass. A buffer is read into again only once the hashing thread is done with
 *    the spans it handed out.
 * Read buffers and decode scratch live in shared memory, so the hashing thread and the kernel threads
 * (kernel_pool.ts) read the chunks where they are; with the WebAssembly kernel they are cut from its arena (one
 * shared WebAssembly memory), so that kernel reads them in place too. Chunk values are views into reused
 * buffers, valid until the next chunk.
 */
import * as fs from 'node:fs/promises';
import { Checkpoint, DType, DTYPE_BYTES, float32Of, isFloatDType, numel, TensorInfo } from '../safetensors';
import { filePath, storeFor } from '../store';
import { KernelArena } from '../kernel/arena';
import { InputHasher } from './input_hasher';
import { allFinite } from '../kernel/finite';

/** Where the bytes handed out are hashed: on a hashing thread (the default), or not at all (the passes). */
export type Hashing = 'thread' | 'none';

/** Bytes of read buffers per shard activity, shared by all inputs (the chunk size follows from it). */
export const STREAM_BUDGET = 96 * 1024 * 1024;

/** The read budget: MERGEFLOW_STREAM_BUDGET (bytes) when set, else STREAM_BUDGET. */
export function streamBudget(): number {
  const v = process.env.MERGEFLOW_STREAM_BUDGET;
  if (v === undefined || v === '') return STREAM_BUDGET;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`MERGEFLOW_STREAM_BUDGET='${v}' is not a positive whole number of bytes; unset it or fix it`);
  return n;
}
/** The smallest chunk we go down to, whatever the number of inputs. */
const MIN_CHUNK = 16 * 1024;

interface Located {
  file: number;
  /** Absolute byte offset of the tensor's data in its file. */
  offset: number;
  dtype: DType;
}

/** Bytes [offset, offset + length) of one of an input's files. */
export interface Span {
  file: number;
  offset: number;
  length: number;
}

/** Pack spans, in the order they will be asked for, into read windows of at most `capacity` bytes each. */
export function planWindows(spans: Iterable<Span>, capacity: number): Span[] {
  const windows: Span[] = [];
  let w: Span | undefined;
  for (const s of spans) {
    if (s.length > capacity) throw new Error(`internal: a span of ${s.length} bytes exceeds the read buffer`);
    // a later span of the same file, close enough ahead: the window grows to take it (and any gap before it)
    if (w && s.file === w.file && s.offset >= w.offset && s.offset + s.length - w.offset <= capacity) {
      w.length = Math.max(w.length, s.offset + s.length - w.offset);
    } else {
      w = { ...s };
      windows.push(w);
    }
  }
  return windows;
}

/** Where a tensor's data lies in a checkpoint: its file, the absolute offset there, and its dtype. */
function locate(ck: Checkpoint, name: string): Located {
  const info = ck.info(name);
  const file = ck.files.findIndex((f) => f.has(name) && f.info(name) === info);
  return { file, offset: ck.files[file].header.dataStart + info.begin, dtype: info.dtype };
}

const holds = (w: Span | undefined, file: number, offset: number, length: number) =>
  w !== undefined && w.file === file && offset >= w.offset && offset + length <= w.offset + w.length;

/**
 * One input's files, two shared read buffers over them (one being read from, one being read into), and its
 * place in the hashing thread.
 */
class InputReader {
  /** Both buffers, one after the other, in one piece of shared memory. */
  readonly region: Uint8Array;
  private readonly bufs: Uint8Array[];
  /** What each buffer holds, or will hold once its read (reads[b]) resolves. */
  private readonly held: (Span | undefined)[] = [undefined, undefined];
  private readonly reads: (Promise<void> | undefined)[] = [undefined, undefined];
  /** Per buffer: spans handed to the hashing thread up to the last one from that buffer. */
  private readonly handedOut = [0, 0];
  private cur = 0;
  private readonly windows: Span[];
  /** The planned window to read next. */
  private next = 0;
  /** Set when hashing on a thread: this reader's index there. */
  hasher: { thread: InputHasher; input: number } | undefined;
  private readonly handles: (Promise<fs.FileHandle> | undefined)[];
  readBytes = 0;

  /** `spans`: what the merge will ask of this input, in order (its reads are planned from them). */
  constructor(
    readonly ck: Checkpoint,
    capacity: number,
    spans: Iterable<Span>,
    alloc: (bytes: number) => Uint8Array,
  ) {
    this.windows = planWindows(spans, capacity);
    // a second buffer only where there is a next window to read ahead
    const buffers = this.windows.length > 1 ? 2 : 1;
    const size = Math.max(
      1,
      Math.min(
        capacity,
        this.windows.reduce((a, w) => Math.max(a, w.length), 0),
      ),
    );
    this.region = alloc(size * buffers);
    this.bufs = Array.from({ length: buffers }, (_, b) => this.region.subarray(b * size, (b + 1) * size));
    this.handles = ck.files.map(() => undefined);
  }

  /** The bytes [offset, offset + length) of a file, hashed; a view valid until the next call. */
  async span(file: number, offset: number, length: number): Promise<Uint8Array> {
    if (!holds(this.held[this.cur], file, offset, length)) {
      const other = this.bufs.length > 1 ? 1 - this.cur : this.cur;
      if (other !== this.cur && holds(this.held[other], file, offset, length)) {
        this.cur = other;
      } else {
        // off the plan (or its first span): settle both buffers, then read this span's window now
        await this.quiet();
        const i = holds(this.windows[this.next], file, offset, length)
          ? this.next
          : this.windows.findIndex((w) => holds(w, file, offset, length));
        this.next = i >= 0 ? i + 1 : this.next;
        const w = i >= 0 ? this.windows[i] : { file, offset, length };
        this.cur = other;
        this.load(this.cur, w);
      }
      // the buffer left behind is free once its spans are hashed: the next window goes there meanwhile
      if (this.bufs.length > 1 && this.next < this.windows.length) this.load(1 - this.cur, this.windows[this.next++]);
    }
    await this.reads[this.cur];
    const w = this.held[this.cur]!;
    const at = offset - w.offset;
    const v = this.bufs[this.cur].subarray(at, at + length);
    if (this.hasher) {
      const { thread, input } = this.hasher;
      thread.update(input, file, v.byteOffset, length);
      this.handedOut[this.cur] = thread.handedOut(input);
    }
    return v;
  }

  /** Start reading window w into buffer b, once the hashing thread is done with what b held. */
  private load(b: number, w: Span): void {
    this.held[b] = w;
    const read = (async () => {
      if (this.hasher) await this.hasher.thread.settled(this.hasher.input, this.handedOut[b]);
      await this.readInto(this.bufs[b], w);
    })();
    // a failed read-ahead is reported when its window is asked for (or not at all, if the merge stopped first)
    read.catch(() => undefined);
    this.reads[b] = read;
  }

  private async readInto(buf: Uint8Array, w: Span): Promise<void> {
    const f = this.ck.files[w.file];
    const store = storeFor(f.uri);
    if (store.scheme === 'file') {
      const fh = await (this.handles[w.file] ??= fs.open(filePath(f.uri), 'r'));
      let got = 0;
      while (got < w.length) {
        const { bytesRead } = await fh.read(buf, got, w.length - got, w.offset + got);
        if (bytesRead === 0)
          throw new Error(`${f.uri}: unexpected end of file reading ${w.length} bytes at ${w.offset}`);
        got += bytesRead;
      }
    } else {
      buf.set(await store.read(f.uri, w.offset, w.length));
    }
    this.readBytes += w.length;
  }

  /** Waits for reads in flight to end, whether they succeeded or not. */
  private async quiet(): Promise<void> {
    await Promise.all(this.reads.map((r) => r?.catch(() => undefined)));
  }

  async close(): Promise<void> {
    await this.quiet();
    const handles = await Promise.all(this.handles.map((h) => h?.catch(() => undefined)));
    await Promise.all(handles.map((h) => h?.close()));
  }
}

/** One chunk of one float tensor: elements [start, start + base.length) of the tensor, all inputs in float32. */
export interface Chunk {
  tensor: TensorInfo;
  start: number;
  base: Float32Array;
  models: Float32Array[];
}

export interface StreamOptions {
  /** Read buffer bytes shared by all inputs (default: streamBudget()). */
  budget?: number;
  /** Where the bytes handed out are hashed (default: on a hashing thread). */
  hashing?: Hashing;
  /**
   * Refuse NaN and ±Inf in every chunk before handing it out (default). A caller that checks the chunks itself
   * (the merge, in its kernel threads) turns this off and calls refuseNonFinite when it finds one.
   */
  checkFinite?: boolean;
  /** Cut the read buffers and decode scratch from this arena (the WebAssembly kernel's memory). */
  arena?: KernelArena;
  /**
   * Read the base's float tensors (default). A base-free merge sets false: chunks then carry a base of zeros,
   * and of the base only its non-float tensors are read (they go to the output unchanged).
   */
  readBase?: boolean;
}

/**
 * Whether input `input` (0 = the base) hands out a tensor of this dtype: float tensors come from every model,
 * and from the base unless the merge is base-free; the base's other tensors go to the output unchanged.
 */
export function inputReads(input: number, dtype: DType, readBase: boolean): boolean {
  return isFloatDType(dtype) ? input > 0 || readBase : input === 0;
}

export class ShardStream {
  private readonly readers: InputReader[];
  private readonly scratch: Float32Array[];
  private readonly hasher: InputHasher | undefined;
  private readonly checkFinite: boolean;
  private readonly readBase: boolean;
  private readonly alloc: (bytes: number) => Uint8Array;
  private zeros: Float32Array | undefined;
  /** Elements per chunk. */
  readonly chunk: number;

  /** `tensors`: the base tensors this stream will be asked for (float ones read from every input). */
  constructor(
    base: Checkpoint,
    models: Checkpoint[],
    tensors: readonly TensorInfo[],
    { budget = streamBudget(), hashing = 'thread', checkFinite = true, arena, readBase = true }: StreamOptions = {},
  ) {
    this.checkFinite = checkFinite;
    this.readBase = readBase;
    this.alloc = arena ? (bytes) => arena.bytes(bytes) : (bytes) => new Uint8Array(new SharedArrayBuffer(bytes));
    const inputs = [base, ...models];
    const perInput = Math.floor(budget / Math.max(1, readBase ? inputs.length : models.length));
    // two buffers per input (one read from, one read into) share its part of the budget
    const capacity = Math.floor(perInput / 2);
    this.chunk = Math.max(MIN_CHUNK, Math.floor(capacity / 8));
    this.readers = inputs.map((ck, i) => {
      const spans = this.spansOf(ck, i, tensors);
      return new InputReader(ck, Math.max(capacity, this.chunk * 8), spans, this.alloc);
    });
    this.scratch = inputs.map(() => new Float32Array(0));
    if (hashing === 'thread') {
      const thread = new InputHasher(
        this.readers.map((r) => r.region.buffer as SharedArrayBuffer),
        inputs.map((ck) => ck.files.length),
      );
      this.readers.forEach((r, input) => (r.hasher = { thread, input }));
      this.hasher = thread;
    }
  }

  /**
   * The spans input i will be asked for, in order: its part of each tensor, float ones in chunks of
   * `this.chunk` elements (chunks()), the base's others in pieces of chunk × 8 bytes (baseBytes()).
   */
  private *spansOf(ck: Checkpoint, i: number, tensors: readonly TensorInfo[]): Generator<Span> {
    for (const t of tensors) if (inputReads(i, t.dtype, this.readBase)) yield* this.pieces(ck, t);
  }

  /**
   * The spans one tensor is handed out in, from checkpoint ck: float tensors in chunks of `this.chunk` elements,
   * others in pieces of chunk × 8 bytes. The read plan (spansOf) and the reads (chunks, baseBytes) both use it,
   * so what is read ahead is what is asked for.
   */
  private *pieces(ck: Checkpoint, t: TensorInfo): Generator<Span> {
    const { file, offset, dtype } = locate(ck, t.name);
    if (isFloatDType(t.dtype)) {
      const n = numel(t.shape);
      const w = DTYPE_BYTES[dtype];
      for (let start = 0; start < n; start += this.chunk)
        yield { file, offset: offset + start * w, length: Math.min(this.chunk, n - start) * w };
    } else {
      const bytes = t.end - t.begin;
      const step = this.chunk * 8;
      for (let o = 0; o < bytes; o += step) yield { file, offset: offset + o, length: Math.min(step, bytes - o) };
    }
  }

  /** The raw bytes of a base tensor in pieces (non-float tensors go to the output unchanged), hashed. */
  async *baseBytes(t: TensorInfo): AsyncGenerator<Uint8Array> {
    const r = this.readers[0];
    for (const s of this.pieces(r.ck, t)) yield await r.span(s.file, s.offset, s.length);
  }

  /** The chunks of one float tensor, in element order, every input read concurrently. */
  async *chunks(t: TensorInfo): AsyncGenerator<Chunk> {
    if (!isFloatDType(t.dtype)) throw new Error(`internal: '${t.name}' is ${t.dtype}, not a float tensor`);
    const n = numel(t.shape);
    const first = this.readBase ? 0 : 1;
    const readers = this.readers.slice(first);
    const dtypes = readers.map((r) => r.ck.info(t.name).dtype);
    // each input's pieces of the tensor, stepped together: piece j of every input is chunk j
    const pieces = readers.map((r) => this.pieces(r.ck, t));
    for (let start = 0; start < n; start += this.chunk) {
      const len = Math.min(this.chunk, n - start);
      const spans = await Promise.all(
        readers.map((r, j) => {
          const s = pieces[j].next().value as Span;
          return r.span(s.file, s.offset, s.length);
        }),
      );
      const values = spans.map((bytes, j) => {
        const i = first + j;
        if (this.scratch[i].length < len) this.scratch[i] = this.f32(this.chunk);
        return float32Of(bytes, dtypes[j], this.scratch[i]);
      });
      if (!this.readBase) values.unshift((this.zeros ??= this.f32(this.chunk)).subarray(0, len));
      const chunk = { tensor: t, start, base: values[0], models: values.slice(1) };
      if (this.checkFinite) await this.refuseNonFinite(chunk);
      yield chunk;
    }
  }

  /** A new float32 scratch array from the stream's memory (shared; zeroed). */
  private f32(n: number): Float32Array {
    const b = this.alloc(n * 4);
    return new Float32Array(b.buffer, b.byteOffset, n);
  }

  /** Throws when an input's values in this chunk hold NaN or ±Inf (they would spread to every merged entry). */
  async refuseNonFinite(c: Chunk): Promise<void> {
    for (const [i, v] of [c.base, ...c.models].entries()) {
      // the whole tensor's read gives the message its count of bad values
      if (!allFinite(v)) await this.readers[i].ck.readFloat32(c.tensor.name);
    }
  }

  /** Per input (base first), the BLAKE3 per file of the bytes handed out so far. Call once, at the end. */
  async digests(): Promise<string[][]> {
    if (!this.hasher) throw new Error('internal: input digests asked of a stream that does not hash');
    return this.hasher.digests();
  }

  get bytesRead(): number {
    return this.readers.reduce((a, r) => a + r.readBytes, 0);
  }

  /** Closes the input files and ends the hashing thread (also when the merge stopped half-way). */
  async close(): Promise<void> {
    await Promise.all([...this.readers.map((r) => r.close()), this.hasher?.close()]);
  }
}
