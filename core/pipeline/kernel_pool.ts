/**
 * The chunk kernel across the cores: a small pool of worker threads (kernel_thread.ts) over chunks in shared
 * memory. Each chunk is split into equal element ranges, one per thread, the calling thread taking the first;
 * the merge is element-wise, so the output's bytes do not depend on the number of threads. Small chunks, and
 * chunks not in shared memory, are merged on the calling thread alone.
 *
 * Threads: MERGEFLOW_KERNEL_THREADS (1 = the calling thread only), else one less than
 * os.availableParallelism(), leaving a core to the hashing thread and the I/O (on the 2-core machine here, two
 * kernel threads were slower than one: bench/RESULTS.md). A pool belongs to one shard merge and is closed when
 * it ends, however it ends.
 *
 * The linear kernel runs in WebAssembly SIMD where it loads (MERGEFLOW_KERNEL=wasm|js, core/kernel/choice.ts):
 * the pool then owns a shared WebAssembly memory (`arena`) that the shard stream cuts its buffers from, every
 * thread instantiates the module over it, and chunks in it are merged in place. Chunks elsewhere are copied in
 * and merged on the calling thread.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { KernelArena } from '../kernel/arena';
import { LinearKernel, linearKernel } from '../kernel/choice';
import { ArenaLinear, linearWasmModule, tableBytes } from '../kernel/linear_wasm';
import { ChunkArrays, KernelSpec, RangeMerge, rangeMerge } from './kernel_range';
import type { RangeMessage, RangeReply, SharedView, ThreadSetup } from './kernel_thread';
import { startThread } from './threads';

/** Below this many elements a chunk is not worth splitting (a message round trip costs tens of microseconds). */
export const MIN_SPLIT = 1 << 16;

/** The number of kernel threads, counting the calling one. */
export function kernelThreads(): number {
  const v = process.env.MERGEFLOW_KERNEL_THREADS;
  if (v === undefined || v === '') return Math.max(1, os.availableParallelism() - 1);
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`MERGEFLOW_KERNEL_THREADS='${v}' is not a whole number of threads ≥ 1; unset it or fix it`);
  return n;
}

function shared(v: Float32Array): SharedView | undefined {
  return v.buffer instanceof SharedArrayBuffer ? [v.buffer, v.byteOffset, v.length] : undefined;
}

interface Thread {
  worker: Worker;
  pending: { resolve: (finite: boolean) => void; reject: (e: Error) => void } | undefined;
}

export class KernelPool {
  private readonly local: RangeMerge;
  private readonly threads: Thread[];
  private failed: Error | undefined;
  private closed = false;
  /** The memory the stream's buffers should come from, when the kernel is WebAssembly. */
  readonly arena: KernelArena | undefined;
  private readonly wasm: ArenaLinear | undefined;
  private readonly baseFree: boolean;
  /** Each thread's call table in the arena, for up to tablesFor models. */
  private tables: number[] = [];
  private tablesFor = -1;

  /**
   * `minSplit`: the smallest chunk split across threads (smaller ones stay on the calling thread). `engine`:
   * the linear kernel's implementation (a tensor method's merge is always JavaScript).
   */
  constructor(
    spec: KernelSpec,
    threads = kernelThreads(),
    private readonly minSplit = MIN_SPLIT,
    engine: LinearKernel = spec.kind === 'linear' ? linearKernel() : 'js',
  ) {
    this.local = rangeMerge(spec);
    this.baseFree = spec.kind === 'linear' && spec.baseFree === true;
    const module = engine === 'wasm' && spec.kind === 'linear' ? linearWasmModule() : undefined;
    if (module) {
      this.arena = new KernelArena();
      this.wasm = new ArenaLinear(this.arena);
    }
    const setup: ThreadSetup = { spec, wasm: module && this.arena ? { module, memory: this.arena.memory } : undefined };
    this.threads = Array.from({ length: threads - 1 }, () => this.start(setup));
  }

  /** Which implementation merges: 'wasm' or 'js'. */
  get engine(): LinearKernel {
    return this.wasm ? 'wasm' : 'js';
  }

  get size(): number {
    return this.threads.length + 1;
  }

  private start(setup: ThreadSetup): Thread {
    const t: Thread = {
      worker: startThread('kernel_thread', setup),
      pending: undefined,
    };
    const fail = (e: Error) => {
      this.failed ??= e;
      t.pending?.reject(e);
      t.pending = undefined;
    };
    t.worker.on('message', (r: RangeReply) => {
      const p = t.pending;
      t.pending = undefined;
      if ('finite' in r) p?.resolve(r.finite);
      else p?.reject(new Error(`kernel thread: ${r.error}`));
    });
    t.worker.on('error', (e) => fail(new Error(`kernel thread failed: ${e.message}`)));
    t.worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`kernel thread exited (code ${code}) in the middle of a merge`));
    });
    return t;
  }

  /**
   * Merge base.length elements of a chunk into a.out, split across the threads. Resolves to whether every
   * input value was finite (the check runs in the threads too); on false the caller must refuse the chunk.
   */
  async merge(tensor: string, a: ChunkArrays, coefs: readonly number[] = []): Promise<boolean> {
    if (this.failed) throw this.failed;
    if (this.wasm) return this.mergeWasm(this.wasm, tensor, a, coefs);
    const n = a.base.length;
    const views = [a.out, a.acc, a.base, ...a.models].map(shared);
    if (this.threads.length === 0 || n < this.minSplit || views.some((v) => v === undefined)) {
      return this.local(tensor, a, coefs, 0, n);
    }
    return this.split(
      n,
      (lo, hi) => ({ tensor, views: views as SharedView[], coefs: [...coefs], lo, hi }),
      (lo, hi) => this.local(tensor, a, coefs, lo, hi),
    );
  }

  /** The WebAssembly kernel: in place over the arena, split across the threads; anything else on this thread. */
  private mergeWasm(
    w: ArenaLinear,
    tensor: string,
    a: ChunkArrays,
    coefs: readonly number[],
  ): Promise<boolean> | boolean {
    const n = a.base.length;
    const K = a.models.length;
    const cut = (v: Float32Array) => v.subarray(0, n);
    const base = this.baseFree ? undefined : cut(a.base);
    const arena = w.arena;
    const out = arena.address(a.out);
    const at = [base, ...a.models].map((v) => (v ? arena.address(v) : -1));
    if (this.threads.length === 0 || n < this.minSplit || out === undefined || at.some((x) => x === undefined)) {
      return w.merge(cut(a.out), base, a.models.map(cut), coefs);
    }
    if (this.tablesFor < K) {
      this.tables = this.threads.map(() => arena.alloc(tableBytes(K)));
      this.tablesFor = K;
    }
    const [b, ...ms] = at as number[];
    const range = (lo: number, table: number) => ({
      out: out + lo * 4,
      base: base ? b + lo * 4 : undefined,
      models: ms.map((m) => m + lo * 4),
      table,
    });
    return this.split(
      n,
      (lo, hi, i) => ({ tensor, wasm: range(lo, this.tables[i]), coefs: [...coefs], n: hi - lo }),
      (lo, hi) => w.kernel.run(range(lo, w.tableFor(K)), coefs, hi - lo),
    );
  }

  /**
   * Elements [0, n) in equal ranges, 16-element aligned: the first on this thread (`local`), the others sent
   * to the threads (`message`). Resolves to whether every range's inputs were finite.
   */
  private async split(
    n: number,
    message: (lo: number, hi: number, thread: number) => RangeMessage,
    local: (lo: number, hi: number) => boolean,
  ): Promise<boolean> {
    const T = this.threads.length + 1;
    const step = Math.ceil(n / T / 16) * 16;
    const done = this.threads.map((t, i) => {
      const lo = Math.min(n, (i + 1) * step);
      const hi = Math.min(n, lo + step);
      return new Promise<boolean>((resolve, reject) => {
        t.pending = { resolve, reject };
        t.worker.postMessage(message(lo, hi, i));
      });
    });
    let failure: unknown;
    let finite = false;
    try {
      finite = local(0, Math.min(n, step));
    } catch (e) {
      failure = e;
    }
    // never return while a thread may still write into the shared buffers
    const settled = await Promise.allSettled(done);
    if (failure) throw failure;
    for (const s of settled) {
      if (s.status === 'rejected') throw s.reason;
      finite &&= s.value;
    }
    return finite;
  }

  /** Stops the threads (at the end of a shard, or when it was cancelled or failed). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
