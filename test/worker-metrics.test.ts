/**
 * A real worker with MERGEFLOW_METRICS_ADDRESS serves Prometheus metrics: after a small data-free merge and a
 * short AdaMerging run through the local stack, /metrics holds mergeflow's figures (bytes merged equal to the
 * output's tensor bytes, shards, optimiser steps, epochs) and the Temporal SDK's runtime metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { AdaResult } from '../core/merge/adamerging/run_types';
import type { MergeResult } from '../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { temporalTarget } from '../workers/temporal_config';
import { parseAddress } from '../workers/metrics';
import { s3Prefix, startWorker, stopWorker, tmpDir, uniq, waitFor } from './helpers/env';

const queue = uniq('metrics');
let worker: ChildProcess;
let connection: Connection;
let client: Client;
let metricsUrl = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Samples of the Prometheus text format: "name{labels} value" → value, keyed by "name{labels}". */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function scrape(): Promise<{ text: string; values: Map<string, number> }> {
  const res = await fetch(metricsUrl);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, values: samples(text) };
}

before(async () => {
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  worker = startWorker(queue, { MERGEFLOW_METRICS_ADDRESS: `127.0.0.1:${port}` });
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
  await waitFor(
    () =>
      fetch(metricsUrl).then(
        (r) => r.ok,
        () => undefined,
      ),
    60_000,
    'the metrics endpoint',
  );
});

after(async () => {
  if (worker) await stopWorker(worker);
  await connection?.close();
});

test(
  'metrics: bytes merged and shards after a data-free merge, plus the SDK runtime metrics',
  { timeout: 180_000 },
  async () => {
    const dir = tmpDir('metrics');
    const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 5, models: 2, dim: 64, layers: 3 });
    const out = path.join(dir, 'out', 'merged.safetensors');
    const config = validateConfig(
      { method: 'task_arithmetic', base: ck.base, models: ck.models, output: out, shards: 3 },
      'test',
    );
    const before = (await scrape()).values;
    assert.equal(before.get('mergeflow_bytes_merged_total{method="task_arithmetic"}') ?? 0, 0);
    const h = await client.workflow.start('dataFreeMerge', {
      taskQueue: queue,
      workflowId: uniq('metrics-merge'),
      args: [{ config }],
    });
    const r = (await h.result()) as MergeResult;
    // the tensor bytes of the output: the file less its 8-byte header length and the JSON header
    const file = fs.readFileSync(out);
    const tensorBytes = file.length - 8 - Number(file.readBigUInt64LE(0));
    assert.equal(r.output.bytes, file.length);

    const { text, values } = await scrape();
    assert.equal(values.get('mergeflow_bytes_merged_total{method="task_arithmetic"}'), tensorBytes);
    assert.equal(values.get('mergeflow_shards_merged_total{method="task_arithmetic"}'), 3);
    assert.equal(values.get('mergeflow_activity_seconds_count{activity="mergeShard",outcome="completed"}'), 3);
    assert.equal(values.get('mergeflow_activity_seconds_count{activity="planMerge",outcome="completed"}'), 1);
    // the Temporal SDK's own runtime telemetry, merged into the same endpoint
    const sdk = [...values.keys()].filter((k) => k.startsWith('temporal_'));
    assert.ok(sdk.length > 0, `Temporal SDK metrics present:\n${text.slice(-2000)}`);
    assert.ok(
      sdk.some((k) => k.startsWith('temporal_activity_execution_latency') && k.includes('activity_type="mergeShard"')),
      'the SDK timed the mergeShard activities',
    );
  },
);

test('metrics: optimiser steps and epoch times after an AdaMerging run', { timeout: 240_000 }, async () => {
  const prefix = s3Prefix('metrics-ada');
  const fx = await writeAdaFixture(`${prefix}/in`);
  const config = validateConfig(
    {
      method: 'adamerging',
      base: fx.pretrained,
      tasks: fx.tasks,
      output: `${prefix}/out`,
      parameters: { granularity: 'task', steps: 8, steps_per_epoch: 4, checkpoint_every: 2, batch_size: 4, seed: 1 },
    },
    'test',
  );
  const h = await client.workflow.start('adaMergingRun', {
    taskQueue: queue,
    workflowId: uniq('metrics-ada'),
    args: [{ config }],
  });
  const r = (await h.result()) as AdaResult;
  assert.equal(r.steps, 8);
  const { values } = await scrape();
  assert.equal(values.get('mergeflow_optimiser_steps_total'), 8);
  assert.equal(values.get('mergeflow_epoch_seconds_count'), 2);
  assert.ok((values.get('mergeflow_epoch_seconds_sum') ?? 0) > 0, 'epoch time recorded');
});

test('metrics: a bad MERGEFLOW_METRICS_ADDRESS is refused with a message that names it', () => {
  assert.throws(() => parseAddress('9464'), /MERGEFLOW_METRICS_ADDRESS=9464 is not an address: expected HOST:PORT/);
  assert.deepEqual(parseAddress('[::1]:9464'), { host: '::1', port: 9464 });
});
