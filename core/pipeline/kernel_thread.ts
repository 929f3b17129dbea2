/**
 * A kernel thread of kernel_pool.ts: merges the element range it is sent of a chunk that lives in shared
 * memory, writes its part of the output there, and answers whether the inputs were finite there (or the
 * error's message).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { KernelSpec, rangeMerge } from './kernel_range';

/** A Float32Array in shared memory, as it travels: buffer, byte offset, length. */
export type SharedView = [SharedArrayBuffer, number, number];

export type RangeReply = { finite: boolean } | { error: string };

export interface RangeMessage {
  tensor: string;
  /** out, acc, base, then the models. */
  views: SharedView[];
  coefs: number[];
  lo: number;
  hi: number;
}

const merge = rangeMerge(workerData as KernelSpec);

parentPort?.on('message', (m: RangeMessage) => {
  try {
    const [out, acc, base, ...models] = m.views.map(([b, o, n]) => new Float32Array(b, o, n));
    const finite = merge(m.tensor, { out, acc, base, models }, m.coefs, m.lo, m.hi);
    parentPort?.postMessage({ finite } satisfies RangeReply);
  } catch (e) {
    parentPort?.postMessage({ error: String((e as Error).message ?? e) } satisfies RangeReply);
  }
});
