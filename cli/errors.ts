/** Turning any failure into one line for the user, and the exit code that goes with it. */
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { ConfigError } from '../core/config/load';
import { MethodNotImplementedError } from '../core/config/schema';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The message to show: for a failed run, the deepest Temporal failure's message (the activity's own error). */
export function rootMessage(e: unknown): string {
  if (!(e instanceof WorkflowFailedError || e instanceof ActivityFailure || e instanceof ApplicationFailure)) {
    return (e as Error)?.message ?? String(e);
  }
  let msg = e.message;
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur instanceof Error; i++) {
    if (cur instanceof ApplicationFailure && cur.message) msg = cur.message;
    if (!(cur instanceof WorkflowFailedError || cur instanceof ActivityFailure || cur instanceof ApplicationFailure))
      break;
    cur = cur.cause;
  }
  return msg;
}

export function exitCodeFor(e: unknown): number {
  return e instanceof ConfigError || e instanceof UsageError || e instanceof MethodNotImplementedError
    ? EXIT_USAGE
    : EXIT_FAILURE;
}

export function reportError(e: unknown): never {
  if (e instanceof ConfigError) {
    console.error(`mergeflow: ${e.message}`);
  } else {
    console.error(`mergeflow: ${rootMessage(e)}`);
    if (process.env.MERGEFLOW_DEBUG) console.error(e);
  }
  process.exit(exitCodeFor(e));
}
