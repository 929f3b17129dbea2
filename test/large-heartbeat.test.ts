/**
 * Long steps under a short heartbeat timeout, and refused S3 access, through the real Temporal server, a real
 * worker process and the real S3 server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { MergeResult } from '../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { parseS3 } from '../core/store';
import { temporalTarget } from '../workers/temporal_config';
import { s3Prefix, startWorker, stopWorker, uniq } from './helpers/env';

const workers: ChildProcess[] = [];
let connection: Connection;
let client: Client;
before(async () => {
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
});
after(async () => {
  for (const w of workers) await stopWorker(w);
  await connection?.close();
});

/** Every activity attempt number in a run's history. */
async function attempts(workflowId: string): Promise<{ type: string; attempt: number }[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const out: { type: string; attempt: number }[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st) out.push({ type: scheduled.get(String(st.scheduledEventId)) ?? '?', attempt: st.attempt ?? 1 });
  }
  return out;
}

test('a 1 s heartbeat timeout: a merge whose steps each run for seconds completes', { timeout: 600_000 }, async () => {
  // ~100 MB per checkpoint in S3: hashing one takes seconds, far past the heartbeat timeout; tensors of 1 M
  // elements, whose merge arithmetic is short (a single huge tensor waits for element-chunked merging)
  const root = s3Prefix('heartbeat');
  const ck = await writeSyntheticCheckpoints(`${root}/in`, { seed: 8, models: 2, dim: 1024, layers: 24 });
  const queue = uniq('hb');
  workers.push(startWorker(queue));
  const workflowId = uniq('merge-hb');
  const config = validateConfig(
    { method: 'task_arithmetic', base: ck.base, models: ck.models, output: `${root}/out/m.safetensors`, shards: 2 },
    'test',
  );
  const handle = await client.workflow.start('dataFreeMerge', {
    taskQueue: queue,
    workflowId,
    args: [{ config, heartbeatTimeoutSeconds: 1 }],
  });
  const result = (await handle.result()) as MergeResult;
  assert.equal(result.output.uri, `${root}/out/m.safetensors`);
  const all = await attempts(workflowId);
  assert.ok(all.some((a) => a.type === 'mergeShard'));
  // Without heartbeats on progress, every attempt of a long step (merging, which also hashes) outlives the timeout and the run fails
  // after its last retry. A worker starved of CPU for over a second can still miss one beat; then that
  // attempt is retried, so retries are reported here, not asserted.
  const retried = all.filter((a) => a.attempt > 1);
  if (retried.length) console.error(`retried under a 1 s heartbeat timeout: ${JSON.stringify(retried)}`);
});

test('bad S3 credentials on the worker: the run fails at once, naming the bucket and what to set', async () => {
  const root = s3Prefix('denied');
  const ck = await writeSyntheticCheckpoints(`${root}/in`, { seed: 1, models: 2, dim: 8, layers: 1 });
  const queue = uniq('denied');
  workers.push(
    startWorker(queue, { AWS_ACCESS_KEY_ID: 'mergeflow-wrong-key', AWS_SECRET_ACCESS_KEY: 'wrong-secret-key' }),
  );
  const workflowId = uniq('merge-denied');
  const config = validateConfig(
    { method: 'weight_average', base: ck.base, models: ck.models, output: `${root}/out/m.safetensors` },
    'test',
  );
  const handle = await client.workflow.start('dataFreeMerge', { taskQueue: queue, workflowId, args: [{ config }] });
  const err = await handle.result().then(
    () => assert.fail('the run succeeded without access'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  let msg = '';
  for (let cur: unknown = err; cur; cur = (cur as Error).cause) msg = (cur as Error).message || msg;
  assert.ok(msg.includes(`'${parseS3(root).bucket}'`), msg);
  assert.match(msg, /AWS_ACCESS_KEY_ID/);
  assert.deepEqual(
    (await attempts(workflowId)).filter((a) => a.attempt > 1),
    [],
    'not retried',
  );
});
