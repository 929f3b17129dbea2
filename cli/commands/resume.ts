/**
 * `mergeflow resume RUN`: carry on a failed, cancelled, timed-out or terminated run from the work it committed, as
 * a new run of the same workflow type linked to it (memo `resumedFrom`, shown by `list` and in the Temporal UI).
 * The inputs pinned by the first run are checked here first, and again by the resumed run before it reuses work.
 */
import { Command } from 'commander';
import { readRunRecord, checkInputs } from '../../core/resume/record';
import type { MergeResult } from '../../core/pipeline/run_types';
import { connectClient } from '../client';
import { follow } from '../follow';
import { printJson, resultLines } from '../format';
import { rootMessage, UsageError } from '../errors';
import { intArg } from '../args';
import { handleFor } from './runs';

const RESUMABLE = ['FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT'];

function resumeId(firstRun: string, now = new Date()): string {
  return `${firstRun}-resume-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-')}`;
}

export function resumeCommand(): Command {
  return new Command('resume')
    .description(
      'continue a failed, cancelled, timed-out or terminated run from its committed work, as a new linked run',
    )
    .argument('<run>', 'run id (workflow id) of the run to continue')
    .option('-w, --wait', 'follow the resumed run until it ends and print the result')
    .option('--json', 'print one JSON object')
    .option('--allow-changed-inputs', 'inputs changed since the run started: drop its work and redo it with them')
    .option('--id <workflowId>', 'run id for the resumed run (default: <first run>-resume-<UTC time>)')
    .option(
      '--heartbeat-timeout <seconds>',
      'seconds without a heartbeat before a unit is retried',
      intArg('--heartbeat-timeout', 1),
      60,
    )
    .action(
      async (
        run: string,
        opts: { wait?: boolean; json?: boolean; allowChangedInputs?: boolean; id?: string; heartbeatTimeout: number },
      ) => {
        const { client, desc } = await handleFor(run);
        const status = desc.status.name;
        if (!RESUMABLE.includes(status))
          throw new UsageError(
            status === 'RUNNING'
              ? `run '${run}' is still running; only a run that stopped can be resumed`
              : `run '${run}' is ${status}; there is nothing to resume`,
          );
        const workPrefix = desc.memo?.workPrefix;
        if (typeof workPrefix !== 'string')
          throw new UsageError(
            `run '${run}' recorded no work prefix (it stopped before planning, or predates resume support), so there is nothing to reuse; start it again with 'mergeflow run CONFIG'`,
          );
        const record = await readRunRecord(workPrefix);
        if (!record)
          throw new UsageError(
            `run '${run}': its work under ${workPrefix} is gone (removed by 'mergeflow gc' or published); start it again with 'mergeflow run CONFIG'`,
          );
        const changed = await checkInputs(record, run, opts.allowChangedInputs ?? false);
        for await (const w of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
          if (w.memo?.workPrefix === workPrefix)
            throw new UsageError(
              `run '${w.workflowId}' is already resuming '${run}'; follow it with 'mergeflow watch ${w.workflowId}'`,
            );
        }
        const runId = opts.id ?? resumeId(record.runId);
        const { target } = await connectClient();
        const handle = await client.workflow.start(record.workflowType, {
          taskQueue: target.taskQueue,
          workflowId: runId,
          args: [
            {
              config: record.config,
              heartbeatTimeoutSeconds: opts.heartbeatTimeout,
              resume: { from: run, workPrefix, allowChangedInputs: opts.allowChangedInputs ?? false },
            },
          ],
          memo: { resumedFrom: run, workPrefix },
        });
        const note = changed.length
          ? `inputs changed (${changed.length}); all work is redone`
          : 'committed work is reused';
        if (!opts.wait) {
          if (opts.json) printJson({ runId, resumedFrom: run, status: 'running', changedInputs: changed });
          else console.log(`resumed ${run} as ${runId} (${note})\n  watch:  mergeflow watch ${runId}`);
          return;
        }
        try {
          const r = await follow<MergeResult>(handle, {
            bar: !opts.json && process.stderr.isTTY === true,
            quiet: opts.json,
          });
          if (opts.json)
            printJson({
              runId,
              resumedFrom: run,
              status: 'completed',
              output: r.output.uri,
              sha256: r.output.sha256,
              bytes: r.output.bytes,
              manifest: r.manifestUri,
              reused: r.reused,
              changedInputs: changed,
            });
          else console.log([`resumed ${run} as ${runId} (${note})`, ...resultLines(r)].join('\n'));
        } catch (e) {
          if (!opts.json) throw e;
          printJson({ runId, resumedFrom: run, status: 'failed', error: rootMessage(e) });
          process.exitCode = 1;
        }
      },
    );
}
