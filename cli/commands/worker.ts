/** `mergeflow worker`: run a worker process until interrupted. */
import { Command } from 'commander';
import { runWorker } from '../../workers/worker';

export function workerCommand(): Command {
  return new Command('worker')
    .description('run a worker that executes merges (connects to TEMPORAL_ADDRESS; stop with Ctrl-C)')
    .option('-c, --concurrency <n>', 'parallel activities on this worker', Number)
    .action(async (opts: { concurrency?: number }) => {
      await runWorker({ maxActivities: opts.concurrency });
    });
}
