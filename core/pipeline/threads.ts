/** The worker threads the merge starts (kernel and hashing threads), counted until they have exited. */
import { Worker } from 'node:worker_threads';

let live = 0;

/** Start a worker thread from a compiled module next to this one, and count it until its 'exit'. */
export function startThread(module: string, workerData: unknown): Worker {
  const w = new Worker(require.resolve(`./${module}`), { workerData });
  live++;
  w.once('exit', () => live--);
  return w;
}

/** Worker threads started by merges that have not exited yet (0 when every shard stream and pool is closed). */
export function liveThreads(): number {
  return live;
}
