/**
 * AdaMerging's `parallel: tasks` mode against the real Temporal and S3 servers: each step's per-task gradients
 * fan out over the workers and a reduce sums them in task order. Same config and seed → the same λ bytes, the
 * same losses and the same final optimiser state as the sequential mode, with 1 worker and with 2 workers
 * (where both workers computed gradients) across a forced continue-as-new.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { AdamergingConfig } from '../core/config/schema';
import type { AdaResult } from '../core/merge/adamerging/run_types';
import { SafetensorsFile } from '../core/safetensors';
import { readJson, storeFor } from '../core/store';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import { temporalTarget } from '../workers/temporal_config';
import { s3Prefix, startWorker, stopWorker, uniq } from './helpers/env';

const STEPS = 6;
const prefix = s3Prefix('ada-par');
const queue = uniq('ada-par');
const workers: ChildProcess[] = [];
let fx: AdaFixture;
let connection: Connection;
let client: Client;

before(async () => {
  fx = await writeAdaFixture(`${prefix}/in`, { tasks: 3, seed: 5 });
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
  workers.push(startWorker(queue));
});

after(async () => {
  for (const w of workers) await stopWorker(w, 'SIGKILL');
  await connection?.close();
});

function config(label: string, parameters: Record<string, unknown>): AdamergingConfig {
  const cfg = validateConfig(
    {
      method: 'adamerging',
      base: fx.pretrained,
      tasks: fx.tasks,
      output: `${prefix}/out/${label}`,
      parameters: { steps: STEPS, batch_size: 4, seed: 3, lr: 0.02, steps_per_epoch: 4, ...parameters },
    },
    'test',
  );
  assert.equal(cfg.method, 'adamerging');
  return cfg as AdamergingConfig;
}

async function run(label: string, parameters: Record<string, unknown>, input: { epochsPerRun?: number } = {}) {
  const h = await client.workflow.start('adaMergingRun', {
    taskQueue: queue,
    workflowId: uniq(`ada-par-${label}`),
    args: [{ config: config(label, parameters), heartbeatTimeoutSeconds: 10, affinityTimeoutSeconds: 3, ...input }],
  });
  return { r: (await h.result()) as AdaResult, h };
}

const bytes = async (uri: string) => Buffer.from(await storeFor(uri).readAll(uri));

/** λ bytes, losses and the final optimiser state of `got` equal those of `want`. */
async function assertSameRun(got: AdaResult, want: AdaResult, what: string): Promise<void> {
  assert.equal(got.steps, STEPS);
  const lambda = async (r: AdaResult) =>
    Buffer.from(await (await SafetensorsFile.open(r.lambdaSafetensors)).readBytes('lambda'));
  assert.ok((await lambda(got)).equals(await lambda(want)), `${what}: λ is bit-identical`);
  const losses = async (r: AdaResult) =>
    ((await readJson(r.losses, (w) => new Error(w))) as { steps: unknown[] }).steps;
  assert.deepEqual(await losses(got), await losses(want), `${what}: losses per task per step`);
  assert.ok((await bytes(got.stateUri)).equals(await bytes(want.stateUri)), `${what}: the same final state bytes`);
  assert.equal(got.epochs, want.epochs);
}

/** The worker identities that ran the gradient activities, over every run of the chain; and the run count. */
async function gradientWorkers(h: WorkflowHandle & { firstExecutionRunId: string }) {
  const ids = new Set<string>();
  let runs = 0;
  for (let runId: string | undefined = h.firstExecutionRunId; runId; runs++) {
    const history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow
      .getHandle(h.workflowId, runId)
      .fetchHistory();
    const events = history.events ?? [];
    const scheduled = new Map<string, string>();
    for (const e of events) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
      const st = e.activityTaskStartedEventAttributes;
      if (st && scheduled.get(String(st.scheduledEventId)) === 'adaMergingTaskGradient') ids.add(st.identity ?? '');
    }
    runId = events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return { ids, runs };
}

for (const granularity of ['layer', 'task'] as const) {
  test(
    `${granularity}-wise, parallel: tasks on 1 worker = the sequential run, bit for bit`,
    { timeout: 300_000 },
    async (t) => {
      const seq = await run(`seq-${granularity}`, { granularity });
      const par = await run(`par1-${granularity}`, { granularity, parallel: 'tasks' });
      await assertSameRun(par.r, seq.r, `${granularity}-wise, 1 worker`);
      assert.equal((await gradientWorkers(par.h)).ids.size, 1);
      assert.equal((await gradientWorkers(seq.h)).ids.size, 0, 'the sequential run has no per-task gradient activity');
      t.diagnostic(
        `sequential: epochs ${seq.r.orchestration.epochWallSeconds.toFixed(2)} s; parallel 1 worker: ${par.r.orchestration.epochWallSeconds.toFixed(2)} s`,
      );
    },
  );
}

test(
  'parallel: tasks on 2 workers with a forced continue-as-new: both compute gradients; λ bit-identical',
  { timeout: 300_000 },
  async () => {
    workers.push(startWorker(queue));
    const seq = await run('seq-2', { granularity: 'layer' });
    const par = await run('par2', { granularity: 'layer', parallel: 'tasks' }, { epochsPerRun: 1 });
    await assertSameRun(par.r, seq.r, '2 workers');
    const { ids, runs } = await gradientWorkers(par.h);
    assert.equal(ids.size, 2, `gradients ran on ${[...ids].join(', ')}`);
    assert.equal(runs, 2, 'the run continued as new after its first epoch');
  },
);
