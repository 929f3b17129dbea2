/** Turning any failure into one line for the user, and the exit code that goes with it. */
import { ConfigError } from '../core/config/load';
import { MethodNotImplementedError } from '../core/config/schema';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Temporal's failure classes, recognised by name so that this module does not load the Temporal client. */
const TEMPORAL_FAILURES = new Set(['WorkflowFailedError', 'ActivityFailure', 'ApplicationFailure']);

function isTemporalFailure(e: unknown): e is Error {
  return e instanceof Error && TEMPORAL_FAILURES.has(e.name);
}

/** The message to show: for a failed run, the deepest Temporal failure's message (the activity's own error). */
export function rootMessage(e: unknown): string {
  if (!isTemporalFailure(e)) return (e as Error)?.message ?? String(e);
  let msg = e.message;
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur instanceof Error; i++) {
    if (cur.name === 'ApplicationFailure' && cur.message) msg = cur.message;
    if (!isTemporalFailure(cur)) break;
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
