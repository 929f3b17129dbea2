/**
 * `mergeflow gc`: remove the committed work of runs that stopped (failed, cancelled, timed out, terminated) and
 * were not resumed since. A work prefix is kept while any run using it is running, and until the last run using
 * it has been closed for longer than --older-than. Completed runs clear their own work when they publish.
 */
import { Command, InvalidArgumentError } from 'commander';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Duration } from '@temporalio/common';
import { clearWork } from '../../core/pipeline/publish';
import { normalizeUri, storeFor } from '../../core/store';
import { isUnder, WORK_FOLDER } from '../../core/resume/work';
import { connectClient } from '../client';
import { printJson } from '../format';

/** Workflow types whose runs keep work under a work prefix named in their memo (add new resumable types here). */
export const RUN_TYPES = ['dataFreeMerge', 'adaMergingRun', 'frankWolfeRun'];

function durationArg(v: string): number {
  let ms: number;
  try {
    ms = msToNumber(v as Duration);
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms) || ms < 0 || !/^\s*\d/.test(v))
    throw new InvalidArgumentError('expected a duration such as 7d, 12h, 30m or 0s');
  return ms;
}

interface PrefixRuns {
  workPrefix: string;
  runs: string[];
  running: boolean;
  lastClosed: number;
}

export function gcCommand(): Command {
  return new Command('gc')
    .description("remove stopped runs' committed work (kept for 'mergeflow resume') once it is old enough")
    .option(
      '--older-than <duration>',
      'only work whose last run closed longer ago than this (7d, 12h, 0s)',
      durationArg,
      durationArg('7d'),
    )
    .option('--under <uri>', 'only work prefixes under this folder or S3 prefix')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--json', 'print JSON')
    .action(async (opts: { olderThan: number; under?: string; dryRun?: boolean; json?: boolean }) => {
      const { client } = await connectClient();
      const byPrefix = new Map<string, PrefixRuns>();
      const query = RUN_TYPES.map((t) => `WorkflowType = "${t}"`).join(' OR ');
      for await (const w of client.workflow.list({ query })) {
        const workPrefix = w.memo?.workPrefix;
        if (typeof workPrefix !== 'string') continue;
        const p = byPrefix.get(workPrefix) ?? { workPrefix, runs: [], running: false, lastClosed: 0 };
        p.runs.push(w.workflowId);
        if (w.status.name === 'RUNNING') p.running = true;
        p.lastClosed = Math.max(p.lastClosed, (w.closeTime ?? w.startTime).getTime());
        byPrefix.set(workPrefix, p);
      }
      const cutoff = Date.now() - opts.olderThan;
      const under = opts.under === undefined ? undefined : normalizeUri(opts.under);
      const removed: { workPrefix: string; runs: string[]; objects: number; bytes: number }[] = [];
      for (const p of byPrefix.values()) {
        // only ever a run's own folder under a work folder, whatever a memo says
        if (p.running || p.lastClosed >= cutoff || !p.workPrefix.includes(`/${WORK_FOLDER}/`)) continue;
        if (under && !isUnder(p.workPrefix, under)) continue;
        const store = storeFor(p.workPrefix);
        const objects = await store.list(p.workPrefix);
        if (!objects.length) continue;
        let bytes = 0;
        for (const uri of objects) bytes += (await store.stat(uri))?.size ?? 0;
        if (!opts.dryRun) await clearWork(p);
        removed.push({ workPrefix: p.workPrefix, runs: p.runs, objects: objects.length, bytes });
      }
      if (opts.json) return printJson({ dryRun: opts.dryRun ?? false, removed });
      const verb = opts.dryRun ? 'would remove' : 'removed';
      if (!removed.length) return console.log('nothing to remove');
      for (const r of removed)
        console.log(`${verb} ${r.workPrefix}  ${r.objects} objects, ${r.bytes} bytes  (runs ${r.runs.join(', ')})`);
    });
}
