/**
 * The activity options the merge workflows share: one retry policy (bad input is never retried) and the options
 * of long activities that heartbeat and, when cancelled, stop on their own before the workflow goes on.
 */
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';

/** Error types that mean bad input: failing again will not help. */
export const NON_RETRYABLE = [
  'InputMismatchError',
  'SafetensorsError',
  'NotFoundError',
  'ConfigError',
  'ZodError',
  'MethodNotImplementedError',
  'InputChangedError',
  'AccessDeniedError',
];

/** Backoff up to 30 s, 8 attempts; NON_RETRYABLE plus `extra` error types fail at once. */
export function retryPolicy(extra: readonly string[] = []): RetryPolicy {
  return {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 8,
    nonRetryableErrorTypes: [...NON_RETRYABLE, ...extra],
  };
}

/** Errors of the model, data and evaluation code: bad input of data-driven methods. */
export const DATA_DRIVEN_ERRORS = ['ModelError', 'DatasetError', 'EvalError'];

/** A long activity: heartbeats within `heartbeatSeconds`; a cancelled one writes its state before it stops. */
export function longActivityOptions(
  heartbeatSeconds: number,
  retry: RetryPolicy,
  startToCloseTimeout: ActivityOptions['startToCloseTimeout'] = '12 hours',
): ActivityOptions {
  return {
    startToCloseTimeout,
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry,
  };
}

/** A short activity (planning, a reduce, publishing the small files): no heartbeat, half an hour at most. */
export function quickActivityOptions(retry: RetryPolicy): ActivityOptions {
  return { startToCloseTimeout: '30 minutes', retry };
}
