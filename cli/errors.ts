/** Turning any failure into one line for the user, and the exit code that goes with it. */
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { ConfigError } from '../core/config/load';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The innermost useful message of a (Temporal) error chain. */
export function rootMessage(e: unknown): string {
  let cur: unknown = e;
  let msg = (e as Error)?.message ?? String(e);
  for (let i = 0; i < 8 && cur; i++) {
    if (cur instanceof ApplicationFailure || !(cur instanceof WorkflowFailedError || cur instanceof ActivityFailure)) {
      msg = (cur as Error).message || msg;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return msg;
}

export function exitCodeFor(e: unknown): number {
  return e instanceof ConfigError || e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
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
