/** `mergeflow worker`: run a worker process until interrupted. */
import { Command } from 'commander';
import { intArg } from '../args';

export function workerCommand(): Command {
  return new Command('worker')
    .description('run a worker that executes merges (connects to TEMPORAL_ADDRESS; stop with Ctrl-C)')
    .option('-c, --concurrency <n>', 'parallel activities on this worker', intArg('--concurrency', 1))
    .action(async (opts: { concurrency?: number }) => {
      // loaded here: the Temporal worker runtime is heavy, and no other command needs it
      const { runWorker } = await import('../../workers/worker');
      await runWorker({ maxActivities: opts.concurrency });
    });
}
