/**
 * Byte-level progress from deep inside the stores, without threading a callback through every caller: a step
 * runs inside `withByteProgress(onBytes, fn)`, and every store read or write it makes (on any async path below
 * it) reports the bytes it moved. Activities turn these reports into heartbeats, so a long S3 transfer proves it
 * is alive while it streams, and a stalled one stops heartbeating.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

type OnBytes = (bytes: number) => void;

const sink = new AsyncLocalStorage<OnBytes>();

export function withByteProgress<T>(onBytes: OnBytes, fn: () => Promise<T>): Promise<T> {
  return sink.run(onBytes, fn);
}

/** Called by the stores for each chunk moved; a no-op outside withByteProgress. */
export function reportBytes(bytes: number): void {
  sink.getStore()?.(bytes);
}
