/**
 * Streaming a shard's tensors from every input at once, in element chunks, with one read of each input:
 *  - each input (base or model) has one read buffer; a refill reads from the wanted offset as far as the buffer
 *    holds, so the small neighbouring tensors of a shard come in one read;
 *  - large tensors go in chunks whose size depends on a fixed memory budget divided by the number of inputs,
 *    so memory stays flat however many models are merged and however large the largest tensor is;
 *  - every byte handed to the merge is hashed on the way (sha256 per input file, in the shard's tensor order),
 *    on a thread of its own (input_hasher.ts): the digests of all shards, combined, stand for the inputs in the
 *    manifest, without a separate pass.
 * Read buffers and decode scratch live in shared memory, so the hashing thread and the kernel threads
 * (kernel_pool.ts) read the chunks where they are; with the WebAssembly kernel they are cut from its arena (one
 * shared WebAssembly memory), so that kernel reads them in place too. Chunk values are views into reused
 * buffers, valid until the next chunk.
 */
import { createHash, Hash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { Checkpoint, DType, DTYPE_BYTES, float32Of, isFloatDType, numel, TensorInfo } from '../safetensors';
import { filePath, storeFor } from '../store';
import { KernelArena } from '../kernel/arena';
import { InputHasher } from './input_hasher';
import { allFinite } from '../kernel/finite';

/**
 * Where the bytes handed out are hashed: on a hashing thread (the default), on the calling thread (the
 * earlier way, kept for comparison), or not at all (the passes, which record no digests).
 */
export type Hashing = 'thread' | 'inline' | 'none';

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

/** One input's files, a shared read buffer over one of them, and its hashing (a sha256 per file). */
class InputReader {
  readonly buf: Uint8Array;
  /** Set when hashing on a thread: this reader's index there. */
  hasher: { thread: InputHasher; input: number } | undefined;
  private bufFile = -1;
  private bufStart = 0;
  private bufLen = 0;
  private readonly handles: (fs.FileHandle | undefined)[];
  readonly hashes: (Hash | undefined)[];
  /** Per file, the end of the last byte the shard needs: reads ahead stop there. */
  readonly limits: number[];
  readBytes = 0;

  constructor(
    readonly ck: Checkpoint,
    capacity: number,
    private readonly hashing: Hashing,
    alloc: (bytes: number) => Uint8Array,
  ) {
    this.buf = alloc(capacity);
    this.handles = ck.files.map(() => undefined);
    this.hashes = ck.files.map(() => undefined);
    this.limits = ck.files.map(() => 0);
  }

  /** Note that the shard will read this tensor (so reads ahead may extend to its end). */
  need(name: string): void {
    const at = this.locate(name);
    const info = this.ck.info(name);
    this.limits[at.file] = Math.max(this.limits[at.file], at.offset + info.end - info.begin);
  }

  locate(name: string): Located {
    const info = this.ck.info(name);
    const file = this.ck.files.findIndex((f) => f.has(name) && f.info(name) === info);
    const f = this.ck.files[file];
    return { file, offset: f.header.dataStart + info.begin, dtype: info.dtype };
  }

  /** The bytes [offset, offset + length) of a file, hashed; a view valid until the next call. */
  async span(file: number, offset: number, length: number): Promise<Uint8Array> {
    if (file !== this.bufFile || offset < this.bufStart || offset + length > this.bufStart + this.bufLen) {
      await this.refill(file, offset, length);
    }
    const at = offset - this.bufStart;
    const v = this.buf.subarray(at, at + length);
    if (this.hasher) this.hasher.thread.update(this.hasher.input, file, this.buf.byteOffset + at, length);
    else if (this.hashing === 'inline') (this.hashes[file] ??= createHash('sha256')).update(v);
    return v;
  }

  private async refill(file: number, offset: number, length: number): Promise<void> {
    // the hashing thread may still be reading what this buffer holds
    if (this.hasher) await this.hasher.thread.settled(this.hasher.input);
    const f = this.ck.files[file];
    const want = Math.max(length, Math.min(this.buf.byteLength, this.limits[file] - offset));
    if (want > this.buf.byteLength) throw new Error(`internal: a chunk of ${length} bytes exceeds the read buffer`);
    // bytes already read ahead that the new window starts with move to the front instead of being read again
    let have = 0;
    if (file === this.bufFile && offset >= this.bufStart && offset < this.bufStart + this.bufLen) {
      have = this.bufStart + this.bufLen - offset;
      this.buf.copyWithin(0, offset - this.bufStart, this.bufLen);
    }
    const store = storeFor(f.uri);
    if (store.scheme === 'file') {
      const fh = (this.handles[file] ??= await fs.open(filePath(f.uri), 'r'));
      let got = have;
      while (got < want) {
        const { bytesRead } = await fh.read(this.buf, got, want - got, offset + got);
        if (bytesRead === 0) throw new Error(`${f.uri}: unexpected end of file reading ${want} bytes at ${offset}`);
        got += bytesRead;
      }
    } else if (want > have) {
      this.buf.set(await store.read(f.uri, offset + have, want - have), have);
    }
    this.readBytes += want - have;
    this.bufFile = file;
    this.bufStart = offset;
    this.bufLen = want;
  }

  /** sha256 of what was handed out, per file ('' for a file this shard read nothing of). */
  digests(): string[] {
    return this.hashes.map((h) => (h ? h.digest('hex') : ''));
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h?.close()));
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
    this.chunk = Math.max(MIN_CHUNK, Math.floor(perInput / 8));
    // each input's buffer: its share of the budget, but no more than the bytes this shard needs of it
    const needs = inputs.map((ck, i) => {
      let bytes = 0;
      for (const t of tensors)
        if (inputReads(i, t.dtype, readBase)) bytes += ck.info(t.name).end - ck.info(t.name).begin;
      return bytes;
    });
    this.readers = inputs.map(
      (ck, i) =>
        new InputReader(ck, Math.min(Math.max(perInput, this.chunk * 8), Math.max(needs[i], 8)), hashing, this.alloc),
    );
    this.scratch = inputs.map(() => new Float32Array(0));
    if (hashing === 'thread') {
      const thread = new InputHasher(
        this.readers.map((r) => r.buf.buffer as SharedArrayBuffer),
        inputs.map((ck) => ck.files.length),
      );
      this.readers.forEach((r, input) => (r.hasher = { thread, input }));
      this.hasher = thread;
    }
    for (const t of tensors) this.readers.forEach((r, i) => inputReads(i, t.dtype, readBase) && r.need(t.name));
  }

  /** The raw bytes of a base tensor in pieces (non-float tensors go to the output unchanged), hashed. */
  async *baseBytes(t: TensorInfo): AsyncGenerator<Uint8Array> {
    const r = this.readers[0];
    const at = r.locate(t.name);
    const bytes = t.end - t.begin;
    const step = this.chunk * 8;
    for (let o = 0; o < bytes; o += step) yield await r.span(at.file, at.offset + o, Math.min(step, bytes - o));
  }

  /** The chunks of one float tensor, in element order, every input read concurrently. */
  async *chunks(t: TensorInfo): AsyncGenerator<Chunk> {
    if (!isFloatDType(t.dtype)) throw new Error(`internal: '${t.name}' is ${t.dtype}, not a float tensor`);
    const n = numel(t.shape);
    const at = this.readers.map((r) => r.locate(t.name));
    const first = this.readBase ? 0 : 1;
    for (let start = 0; start < n; start += this.chunk) {
      const len = Math.min(this.chunk, n - start);
      const spans = await Promise.all(
        this.readers.slice(first).map((r, j) => {
          const i = first + j;
          const w = DTYPE_BYTES[at[i].dtype];
          return r.span(at[i].file, at[i].offset + start * w, len * w);
        }),
      );
      const values = spans.map((bytes, j) => {
        const i = first + j;
        if (this.scratch[i].length < len) this.scratch[i] = this.f32(this.chunk);
        return float32Of(bytes, at[i].dtype, this.scratch[i]);
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

  /** Per input (base first), the sha256 per file of the bytes handed out so far. Call once, at the end. */
  async digests(): Promise<string[][]> {
    if (this.hasher) return this.hasher.digests();
    return this.readers.map((r) => r.digests());
  }

  get bytesRead(): number {
    return this.readers.reduce((a, r) => a + r.readBytes, 0);
  }

  /** Closes the input files and ends the hashing thread (also when the merge stopped half-way). */
  async close(): Promise<void> {
    await Promise.all([...this.readers.map((r) => r.close()), this.hasher?.close()]);
  }
}
