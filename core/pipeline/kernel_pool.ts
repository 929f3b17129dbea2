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
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { ChunkArrays, KernelSpec, RangeMerge, rangeMerge } from './kernel_range';
import type { RangeMessage, RangeReply, SharedView } from './kernel_thread';
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

  /** `minSplit`: the smallest chunk split across threads (smaller ones stay on the calling thread). */
  constructor(
    spec: KernelSpec,
    threads = kernelThreads(),
    private readonly minSplit = MIN_SPLIT,
  ) {
    this.local = rangeMerge(spec);
    this.threads = Array.from({ length: threads - 1 }, () => this.start(spec));
  }

  get size(): number {
    return this.threads.length + 1;
  }

  private start(spec: KernelSpec): Thread {
    const t: Thread = {
      worker: startThread('kernel_thread', spec),
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
    const n = a.base.length;
    const views = [a.out, a.acc, a.base, ...a.models].map(shared);
    if (this.threads.length === 0 || n < this.minSplit || views.some((v) => v === undefined)) {
      return this.local(tensor, a, coefs, 0, n);
    }
    const T = this.threads.length + 1;
    const step = Math.ceil(n / T / 16) * 16;
    const done = this.threads.map((t, i) => {
      const lo = Math.min(n, (i + 1) * step);
      const hi = Math.min(n, lo + step);
      return new Promise<boolean>((resolve, reject) => {
        t.pending = { resolve, reject };
        const m: RangeMessage = { tensor, views: views as SharedView[], coefs: [...coefs], lo, hi };
        t.worker.postMessage(m);
      });
    });
    let local: unknown;
    let finite = false;
    try {
      finite = this.local(tensor, a, coefs, 0, Math.min(n, step));
    } catch (e) {
      local = e;
    }
    // never return while a thread may still write into the shared buffers
    const settled = await Promise.allSettled(done);
    if (local) throw local;
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
