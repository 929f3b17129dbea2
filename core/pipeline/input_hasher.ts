/**
 * Hashing (BLAKE3) a shard stream's inputs on a thread of its own (hash_thread.ts), so the merge thread only merges.
 * The thread reads the same shared read buffers the merge does; a buffer is overwritten only after every span
 * handed out of it was hashed (`settled`). The digests are the same as hashing on the merge thread.
 */
import { Worker } from 'node:worker_threads';
import type { HashMessage } from './hash_thread';
import { startThread } from './threads';
import { hashEngine } from '../hash/blake3';

/** Atomics.waitAsync (Node 16+; not in this project's TypeScript lib). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

export class InputHasher {
  private readonly worker: Worker;
  /** Per input: spans hashed so far (written by the thread). */
  private readonly done: Int32Array;
  /** Per input: spans handed to the thread so far. */
  private readonly posted: number[];
  private failed: Error | undefined;
  private closed = false;

  /** One shared read buffer per input, and how many files each input has. */
  constructor(buffers: SharedArrayBuffer[], files: number[]) {
    this.done = new Int32Array(new SharedArrayBuffer(4 * buffers.length));
    this.posted = buffers.map(() => 0);
    // the engine is chosen here, so a bad MERGEFLOW_HASH fails the merge before the thread starts
    this.worker = startThread('hash_thread', { buffers, files, done: this.done, engine: hashEngine() });
    const fail = (e: Error) => {
      this.failed ??= e;
      // wake anyone waiting on a counter that will not move any more
      for (let i = 0; i < this.posted.length; i++) Atomics.notify(this.done, i);
    };
    this.worker.on('error', (e) => fail(new Error(`input hashing thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`input hashing thread exited (code ${code}) before the shard was done`));
    });
  }

  /** Hash bytes [offset, offset + length) of input's buffer, as the next bytes of its file `file`. */
  update(input: number, file: number, offset: number, length: number): void {
    if (this.failed) throw this.failed;
    this.posted[input]++;
    this.worker.postMessage([input, file, offset, length] satisfies HashMessage);
  }

  /** Spans of this input handed to the thread so far. */
  handedOut(input: number): number {
    return this.posted[input];
  }

  /**
   * Resolves once the first `count` spans of this input (default: all handed out so far) are hashed, so the
   * buffer they were in may be overwritten.
   */
  async settled(input: number, count = this.posted[input]): Promise<void> {
    for (;;) {
      if (this.failed) throw this.failed;
      const seen = Atomics.load(this.done, input);
      if (seen >= count) return;
      const w = waitAsync(this.done, input, seen);
      if (w.async) await w.value;
    }
  }

  /** Per input, per file: the BLAKE3 of what was handed out ('' for a file nothing was read of). Call once. */
  async digests(): Promise<string[][]> {
    if (this.closed) throw new Error('internal: input digests asked for after the shard stream was closed');
    if (this.failed) throw this.failed;
    const reply = new Promise<string[][]>((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
    this.worker.postMessage('digests' satisfies HashMessage);
    return reply;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
