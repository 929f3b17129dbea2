/** Commands on existing runs: status, watch, list, results, cancel. */
import { Command, Option } from 'commander';
import { intArg } from '../args';
import type { MergeResult } from '../../core/pipeline/run_types';
import { connectClient } from '../client';
import { follow, queryProgress } from '../follow';
import { printJson, resultLines } from '../format';
import { UsageError } from '../errors';

/** The run's handle and description; a usage error when there is no such run. */
export async function handleFor(runId: string) {
  const { client } = await connectClient();
  const handle = client.workflow.getHandle(runId);
  try {
    const desc = await handle.describe();
    return { client, handle, desc };
  } catch (e) {
    if ((e as Error)?.name === 'WorkflowNotFoundError')
      throw new UsageError(`no run '${runId}'; 'mergeflow list' shows the runs`);
    throw e;
  }
}

export function statusCommand(): Command {
  return new Command('status')
    .description('show the state and progress of a run')
    .argument('<run>', 'run id (workflow id)')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { json?: boolean }) => {
      const { handle, desc } = await handleFor(runId);
      const progress = await queryProgress(handle);
      const out = {
        runId,
        status: desc.status.name,
        type: desc.type,
        started: desc.startTime.toISOString(),
        closed: desc.closeTime?.toISOString(),
        progress,
      };
      if (opts.json) return printJson(out);
      console.log(`${runId}  ${out.status}  started ${out.started}${out.closed ? `  closed ${out.closed}` : ''}`);
      if (progress) {
        console.log(
          `  phase ${progress.phase}  ${progress.done}/${progress.total} units  method ${progress.method}  output ${progress.output}`,
        );
        if (progress.error) console.log(`  error ${progress.error}`);
        const ada = progress as { stateUri?: string; lossPerTask?: number[]; thetaUri?: string; objective?: number[] };
        if (ada.objective?.length)
          console.log(`  objective per iteration ${ada.objective.map((l) => l.toFixed(4)).join(', ')}`);
        if (ada.thetaUri) console.log(`  θt ${ada.thetaUri}`);
        if (ada.lossPerTask?.length)
          console.log(`  loss per task ${ada.lossPerTask.map((l) => l.toFixed(4)).join(', ')}`);
        if (ada.stateUri) console.log(`  optimiser state ${ada.stateUri}`);
      }
    });
}

export function watchCommand(): Command {
  return new Command('watch')
    .description('follow a run with a live progress bar until it ends')
    .argument('<run>', 'run id')
    .action(async (runId: string) => {
      const { handle } = await handleFor(runId);
      const result = await follow<MergeResult>(handle, { bar: process.stderr.isTTY === true });
      console.log(resultLines(result).join('\n'));
    });
}

export function resultsCommand(): Command {
  return new Command('results')
    .description('print the result of a finished run (output URI, sha256, manifest, timings)')
    .argument('<run>', 'run id')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { json?: boolean }) => {
      const { handle, desc } = await handleFor(runId);
      if (desc.status.name === 'RUNNING') {
        throw new UsageError(`run '${runId}' is still running; follow it with 'mergeflow watch ${runId}'`);
      }
      const result = (await handle.result()) as MergeResult;
      if (opts.json) printJson(result);
      else console.log(resultLines(result).join('\n'));
    });
}

export function cancelCommand(): Command {
  return new Command('cancel')
    .description(
      "cancel a running merge (no output is published; its committed work is kept for 'mergeflow resume' until 'mergeflow gc' removes it; Frank-Wolfe keeps its last θt)",
    )
    .argument('<run>', 'run id')
    .action(async (runId: string) => {
      const { handle, desc } = await handleFor(runId);
      if (desc.status.name !== 'RUNNING') throw new UsageError(`run '${runId}' is ${desc.status.name}, not running`);
      await handle.cancel();
      console.log(`cancel requested for ${runId}`);
    });
}

export function listCommand(): Command {
  return new Command('list')
    .description('list merge runs, newest first')
    .addOption(
      new Option('--status <status>', 'only runs with this MergeStatus').choices([
        'running',
        'completed',
        'failed',
        'cancelled',
      ]),
    )
    .option('-n, --limit <n>', 'at most this many runs', intArg('--limit', 1), 20)
    .option('--json', 'print JSON')
    .action(async (opts: { status?: string; limit: number; json?: boolean }) => {
      const { client } = await connectClient();
      let query =
        '(WorkflowType = "dataFreeMerge" OR WorkflowType = "adaMergingRun" OR WorkflowType = "frankWolfeRun")';
      if (opts.status) query += ` AND MergeStatus = "${opts.status.replace(/"/g, '')}"`;
      const rows: {
        runId: string;
        status: string;
        mergeStatus?: string;
        method?: string;
        started: string;
        closed?: string;
        resumedFrom?: string;
      }[] = [];
      for await (const w of client.workflow.list({ query })) {
        const sa = w.searchAttributes as Record<string, unknown[] | undefined>;
        rows.push({
          runId: w.workflowId,
          status: w.status.name,
          mergeStatus: sa.MergeStatus?.[0] as string | undefined,
          method: sa.MergeMethod?.[0] as string | undefined,
          started: w.startTime.toISOString(),
          closed: w.closeTime?.toISOString(),
          resumedFrom: typeof w.memo?.resumedFrom === 'string' ? w.memo.resumedFrom : undefined,
        });
        if (rows.length >= opts.limit) break;
      }
      if (opts.json) return printJson(rows);
      if (!rows.length) return console.log('no runs');
      for (const r of rows)
        console.log(
          `${r.runId.padEnd(48)} ${r.status.padEnd(11)} ${(r.method ?? '').padEnd(16)} ${r.started}${r.resumedFrom ? `  resumes ${r.resumedFrom}` : ''}`,
        );
    });
}
