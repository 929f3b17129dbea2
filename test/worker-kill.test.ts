/** A worker SIGKILLed in the middle of a merge: a new worker finishes the run, and the output is byte-identical. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import type { MergeProgress, MergeResult } from '../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { temporalTarget } from '../workers/temporal_config';
import { startWorker, stopWorker, tmpDir, uniq, waitFor } from './helpers/env';

const workers: ChildProcess[] = [];
let connection: Connection | undefined;
after(async () => {
  for (const w of workers) await stopWorker(w, 'SIGKILL');
  await connection?.close();
});

test(
  'SIGKILL mid-merge, new worker: the run completes with the same bytes as an uninterrupted run',
  { timeout: 300_000 },
  async () => {
    const dir = tmpDir('kill');
    const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 11, models: 3, dim: 1024, layers: 32 });
    const doc = (output: string) => ({
      method: 'ties',
      base: ck.base,
      models: ck.models,
      parameters: { keep: 0.2, scaling: 0.3 },
      output,
      shards: 2,
    });
    const t0 = Date.now();
    const reference = await runLocalMerge(validateConfig(doc(path.join(dir, 'reference.safetensors')), 'test'));

    console.error(`reference run ${(Date.now() - t0) / 1000}s`);
    const queue = uniq('kill');
    const t = temporalTarget();
    connection = await Connection.connect({ address: t.address });
    const client = new Client({ connection, namespace: t.namespace });
    const isRunning = (a: { state?: unknown; lastHeartbeatTime?: unknown }) =>
      Number(a.state) === 2 && !!a.lastHeartbeatTime;
    const handle = await client.workflow.start('dataFreeMerge', {
      taskQueue: queue,
      workflowId: uniq('merge-kill'),
      args: [
        { config: validateConfig(doc(path.join(dir, 'out', 'ties.safetensors')), 'test'), heartbeatTimeoutSeconds: 3 },
      ],
    });
    // Kill a worker while an activity runs on it. A fast machine can finish the activity between our look and the
    // kill; the server's view after the kill tells (an attempt still STARTED there died with the worker), and if
    // the kill fell between two activities a fresh worker takes over and we try again.
    let interrupted = false;
    for (let round = 0; round < 5 && !interrupted; round++) {
      const w = startWorker(queue, { MERGEFLOW_WORKER_ACTIVITIES: '1' });
      workers.push(w);
      const seen = await waitFor(
        async () => {
          const p = await handle.query<MergeProgress>('progress').catch(() => undefined);
          if (!p || p.done < 3 || p.phase === 'completed') return undefined;
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          return pending.some(isRunning) ? p : undefined;
        },
        120_000,
        'the merge to reach its shard passes',
      );
      w.kill('SIGKILL');
      await new Promise((r) => w.once('exit', r));
      const desc = await handle.describe();
      assert.equal(desc.status.name, 'RUNNING', `killed during ${seen.phase} (${seen.done}/${seen.total})`);
      interrupted = (desc.raw.pendingActivities ?? []).some(isRunning);
    }
    assert.ok(interrupted, 'one of five kills landed while an activity ran');

    const second = startWorker(queue);
    workers.push(second);
    const result = (await handle.result()) as MergeResult;
    assert.equal(result.output.sha256, reference.output.sha256, 'byte-identical to the uninterrupted run');
    assert.equal(result.output.bytes, reference.output.bytes);
    // at least one activity ran more than once: the kill really interrupted work
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? [])
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    const retried = attempts.some((a) => a > 1);
    assert.ok(retried, 'an activity attempt was retried after the kill');
  },
);
