/**
 * Progress callback for core/ steps: heartbeats (throttled by the SDK), stops work once cancelled, and gives the
 * event loop a turn now and then so that a CPU-heavy step never starves the heartbeat it just recorded.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Progress } from '../core/pipeline/inputs';
import { withByteProgress } from '../core/io_progress';

const YIELD_EVERY_MS = 100;

export function heartbeatProgress(step: string): Progress {
  let last = Date.now();
  return async (done, total, note) => {
    const ctx = Context.current();
    ctx.heartbeat({ step, done, total, note });
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
    if (Date.now() - last >= YIELD_EVERY_MS) {
      await new Promise((r) => setImmediate(r));
      last = Date.now();
    }
  };
}

/** Errors no retry can fix, whatever the caller's retry policy: an input replaced mid-run, access refused. */
const FINAL = new Set(['InputChangedError', 'AccessDeniedError']);

/** Run an activity body; errors named in FINAL become non-retryable ApplicationFailures with the same message. */
export async function finalOnBadInput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error;
    if (FINAL.has(err?.name))
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    throw e;
  }
}

/** Heartbeat at most this often from byte progress (the SDK throttles further to 80 % of the timeout). */
const BYTE_HEARTBEAT_MS = 200;

/**
 * Run an activity body that heartbeats at once and then on every store transfer under it (bytes moved, see
 * core/io_progress), so that a long read or upload between two progress calls still proves it is alive.
 */
export function withTransferHeartbeats<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat({ step: 'start' });
  let bytes = 0;
  let last = Date.now();
  return withByteProgress((n) => {
    bytes += n;
    if (Date.now() - last < BYTE_HEARTBEAT_MS) return;
    last = Date.now();
    ctx.heartbeat({ step: 'transfer', bytes });
  }, fn);
}

/** The same functions, each run with transfer heartbeats and through finalOnBadInput. */
export function withFinalErrors<T extends object>(fns: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fns) as [string, (...args: unknown[]) => Promise<unknown>][])
    out[k] = (...args: unknown[]) => finalOnBadInput(() => withTransferHeartbeats(() => f(...args)));
  return out as T;
}
