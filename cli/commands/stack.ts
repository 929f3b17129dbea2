/** `mergeflow stack up|down|status`: the local Temporal dev server and S3 server. */
import { Command } from 'commander';
import { formatStatus, stackDown, stackStatus, stackUp } from '../../infra/stack';
import { printJson } from '../format';

export function stackCommand(): Command {
  const stack = new Command('stack').description('install, start, stop and inspect the local Temporal + S3 stack');
  stack
    .command('up')
    .description('install (if missing) and start both servers on 127.0.0.1; idempotent')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await stackUp({ quiet: opts.json });
      if (opts.json) printJson(s);
    });
  stack
    .command('down')
    .description('stop what `stack up` started (data is kept)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await stackDown({ quiet: opts.json });
      if (opts.json) printJson(s);
    });
  stack
    .command('status')
    .description('show whether each server runs and where')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await stackStatus({ quiet: true });
      if (opts.json) printJson(s);
      else console.log(formatStatus(s).join('\n'));
    });
  return stack;
}
