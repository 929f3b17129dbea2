/** Follow a run: a live bar on a terminal (phase, units done), plain lines otherwise. */
import { SingleBar, Presets } from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import type { MergeProgress } from '../core/pipeline/run_types';

const POLL_MS = 500;

export async function queryProgress(handle: WorkflowHandle): Promise<MergeProgress | undefined> {
  try {
    return await handle.query<MergeProgress>('progress');
  } catch {
    return undefined;
  }
}

/** Polls progress until the workflow closes; resolves with its result or rejects with its failure. */
export async function follow<T>(handle: WorkflowHandle, opts: { bar: boolean; quiet?: boolean }): Promise<T> {
  const result = handle.result() as Promise<T>;
  let closed = false;
  result.then(
    () => (closed = true),
    () => (closed = true),
  );
  const bar = opts.bar
    ? new SingleBar(
        { format: ' {phase} |{bar}| {value}/{total} units | {duration_formatted}', hideCursor: true },
        Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastPhase = '';
  while (!closed) {
    const p = await queryProgress(handle);
    if (p && !opts.quiet) {
      if (bar) {
        if (!started) bar.start(p.total, p.done, { phase: p.phase.padEnd(10) });
        started = true;
        bar.setTotal(p.total);
        bar.update(p.done, { phase: p.phase.padEnd(10) });
      } else if (p.phase !== lastPhase) {
        console.error(`[${handle.workflowId}] ${p.phase} (${p.done}/${p.total})`);
      }
      lastPhase = p.phase;
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  if (bar && started) {
    const p = await queryProgress(handle);
    if (p) bar.update(p.done, { phase: p.phase.padEnd(10) });
    bar.stop();
  }
  return result;
}
