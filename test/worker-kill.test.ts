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
    const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 11, models: 3, dim: 1024, layers: 16 });
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
    const first = startWorker(queue, { MERGEFLOW_WORKER_ACTIVITIES: '1' });
    workers.push(first);
    const handle = await client.workflow.start('dataFreeMerge', {
      taskQueue: queue,
      workflowId: uniq('merge-kill'),
      args: [
        { config: validateConfig(doc(path.join(dir, 'out', 'ties.safetensors')), 'test'), heartbeatTimeoutSeconds: 3 },
      ],
    });
    // wait until the run is well into its shard passes, then kill the worker without warning
    const seen = await waitFor(
      async () => {
        const p = await handle.query<MergeProgress>('progress').catch(() => undefined);
        if (!p || p.done < 3 || p.phase === 'completed') return undefined;
        // an activity is running and has reported progress: killing now interrupts real work
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        return pending.some((a) => Number(a.state) === 2 && a.lastHeartbeatTime) ? p : undefined;
      },
      120_000,
      'the merge to reach its shard passes',
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'RUNNING', `killed during ${seen.phase} (${seen.done}/${seen.total})`);

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
