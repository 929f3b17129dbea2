/** Progress callback for core/ steps: heartbeats (throttled by the SDK) and stops work once cancelled. */
import { Context } from '@temporalio/activity';
import type { Progress } from '../core/pipeline/inputs';

export function heartbeatProgress(step: string): Progress {
  return (done, total, note) => {
    const ctx = Context.current();
    ctx.heartbeat({ step, done, total, note });
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  };
}
