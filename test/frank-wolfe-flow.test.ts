/**
 * FW-Merging as a durable run against the real Temporal and S3 servers: the published θT equals the in-process
 * reference (runFrankWolfeLocal) bit for bit, for FW-Hard (layer-wise, TA start) with 1 worker, with 3 workers
 * and a continue-as-new after every iteration, and for FW-Soft with the worker running its update SIGKILLed;
 * the outputs and `mergeflow results` show the selections; a cancel keeps θt and publishes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { CancelledFailure, Client, Connection, WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { FrankWolfeConfig } from '../core/config/schema';
import { FwLocalResult, runFrankWolfeLocal } from '../core/merge/frank_wolfe/local_run';
import type { FwProgress, FwResult, FwRunInput } from '../core/merge/frank_wolfe/run_types';
import { thetaKey } from '../core/merge/frank_wolfe/run_types';
import { workPrefixFor } from '../core/resume/work';
import { Checkpoint } from '../core/safetensors';
import { readJson, storeFor } from '../core/store';
import { initBackend } from '../core/tensor/backend';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import { historyToFixture } from '../workers/history_fixture';
import { temporalTarget } from '../workers/temporal_config';
import { runCli, s3Prefix, startWorker, stopWorker, uniq, waitFor } from './helpers/env';

const prefix = s3Prefix('fw-flow');
const queue = uniq('fw-flow');
const workers: ChildProcess[] = [];
let fx: AdaFixture;
let connection: Connection;
let client: Client;
let hardRef: FwLocalResult;
let softRef: FwLocalResult;

const HARD = {
  variant: 'hard',
  oracle: 'layer',
  start: 'ta',
  iterations: 3,
  proxy_samples: 8,
  step_size: 0.5,
  seed: 3,
} as const;
const SOFT = {
  variant: 'soft',
  oracle: 'task',
  start: 'pretrained',
  iterations: 2,
  proxy_samples: 8,
  adamerging_steps: 40,
  adamerging_batch_size: 4,
  adamerging_lr: 0.01,
  seed: 5,
} as const;

const pool = () => fx.tasks.map((t) => ({ name: t.name, checkpoint: t.model }));
const targets = () => fx.tasks.slice(0, 2).map((t) => ({ name: t.name, head: t.head, proxy: t.data, data: t.data }));

before(async () => {
  fx = await writeAdaFixture(`${prefix}/in`, { tasks: 4, labeled: true, rows: 12 });
  await initBackend(undefined, () => undefined);
  const local = (params: Record<string, unknown>, label: string) =>
    runFrankWolfeLocal({
      pretrained: fx.pretrained,
      pool: fx.tasks.map((t) => ({ name: t.name, model: t.model })),
      targets: targets().map((t) => ({ name: t.name, head: t.head, proxy: t.proxy, data: t.data })),
      params,
      workDir: `${prefix}/local-${label}`,
    });
  hardRef = await local(HARD, 'hard');
  softRef = await local(SOFT, 'soft');
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
  workers.push(startWorker(queue));
});

after(async () => {
  for (const w of workers) await stopWorker(w, 'SIGKILL');
  await connection?.close();
});

function config(label: string, parameters: Record<string, unknown>): FrankWolfeConfig {
  const cfg = validateConfig(
    {
      method: 'frank_wolfe',
      base: fx.pretrained,
      pool: pool(),
      targets: targets(),
      output: out(label),
      shards: 3,
      parameters,
    },
    'test',
  );
  assert.equal(cfg.method, 'frank_wolfe');
  return cfg as FrankWolfeConfig;
}

const out = (label: string) => `${prefix}/out/${label}`;

function start(label: string, parameters: Record<string, unknown>, input: Omit<FwRunInput, 'config'> = {}) {
  return client.workflow.start('frankWolfeRun', {
    taskQueue: queue,
    workflowId: uniq(`fw-${label}`),
    args: [{ config: config(label, parameters), heartbeatTimeoutSeconds: 4, ...input }],
  });
}

/** Every merged tensor of the published model equals the reference's θT, bit for bit. */
async function assertMatches(r: FwResult, ref: FwLocalResult, what: string): Promise<void> {
  const ck = await Checkpoint.open(r.output.uri);
  for (const n of ref.tensors) {
    const got = Buffer.from((await ck.readFloat32(n)).buffer);
    assert.ok(got.equals(Buffer.from(ref.theta[n].buffer)), `${what}: tensor ${n} bit-identical to the reference`);
  }
  assert.equal(r.iterations, ref.iterations.length);
  // the objective the workflow recorded is the reference's f at each θt
  assert.deepEqual(
    r.objective,
    ref.iterations.map((i) => i.lossPerTarget.reduce((a, b) => a + b, 0)),
    `${what}: objective per iteration`,
  );
}

test(
  '1 worker: FW-Hard, layer-wise oracle, TA start: θT bit-identical to the in-process reference; outputs published',
  { timeout: 300_000 },
  async (t) => {
    const h = await start('hard-one', HARD);
    const r = (await h.result()) as FwResult;
    await assertMatches(r, hardRef, '1 worker');
    const sel = (await readJson(r.selections, (w) => new Error(w))) as {
      iterations: { picks: { perTensor: (string | null)[] }[] }[];
    };
    // the picks per tensor agree with the reference's counts per candidate
    sel.iterations.forEach((it, i) => {
      const counts = new Map<string, number>();
      for (const c of it.picks[0].perTensor) counts.set(c ?? '(θt)', (counts.get(c ?? '(θt)') ?? 0) + 1);
      const got = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, k]) => `${n}×${k}`);
      assert.deepEqual(got, hardRef.iterations[i].picks, `iteration ${i} picks`);
    });
    const manifest = (await readJson(r.manifestUri, (w) => new Error(w))) as { files: string[] };
    for (const f of [
      'model.safetensors',
      'config.json',
      'selections.json',
      'objective.json',
      'objective.png',
      'selection.png',
      'accuracy.json',
    ])
      assert.ok(manifest.files.includes(f) && (await storeFor(out('hard-one')).stat(`${out('hard-one')}/${f}`)), f);
    for (const png of [r.objectivePng, r.selectionPng]) {
      const b = Buffer.from(await storeFor(png).readAll(png));
      assert.ok(b.subarray(1, 4).toString() === 'PNG' && b.length > 2000, `${png} is a PNG`);
    }
    const work = workPrefixFor(out('hard-one'), h.workflowId);
    assert.deepEqual(await storeFor(work).list(work), [], 'work prefix cleared');
    const res = await runCli(['results', h.workflowId], { MERGEFLOW_TASK_QUEUE: queue });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^variant +FW-Hard, layer-wise oracle, 3 iterations$/m);
    assert.match(res.stdout, /^selection +s3:\/\/.*\/selections\.json$/m);
    assert.match(res.stdout, /^accuracy +average [0-9.]+ %/m);
    t.diagnostic(`split ${JSON.stringify(r.split)}; timings ${JSON.stringify(r.timings)}`);
    hardOneSha = r.output.sha256;
  },
);
let hardOneSha = '';

test(
  '3 workers with a continue-as-new after every iteration: the same bytes as 1 worker; histories recorded',
  { timeout: 300_000 },
  async () => {
    workers.push(startWorker(queue), startWorker(queue));
    const h = await start('hard-three', HARD, { iterationsPerRun: 1 });
    const firstRun = h.firstExecutionRunId;
    const r = (await h.result()) as FwResult;
    await assertMatches(r, hardRef, '3 workers');
    assert.equal(r.output.sha256, hardOneSha, 'the same model bytes as the 1-worker run');
    const last = await client.workflow.getHandle(h.workflowId).describe();
    assert.notEqual(last.runId, firstRun, 'the run continued as new');
    // the last run still names its work prefix (resume and gc find the work by it)
    assert.equal(last.memo?.workPrefix, workPrefixFor(out('hard-three'), h.workflowId));
    const p = await client.workflow.getHandle(h.workflowId).query<FwProgress>('progress');
    assert.equal(p.phase, 'completed');
    assert.equal(p.objective?.length, HARD.iterations);
    const dir = process.env.MERGEFLOW_RECORD_FW_HISTORIES;
    if (dir) await record(h, firstRun, dir);
  },
);

/** Writes the first and last run's histories as replay fixtures (see frank-wolfe-replay.test.ts). */
async function record(h: WorkflowHandle, firstRun: string, dir: string): Promise<void> {
  const first = await client.workflow.getHandle(h.workflowId, firstRun).fetchHistory();
  const last = await client.workflow.getHandle(h.workflowId).fetchHistory();
  fs.writeFileSync(path.join(dir, 'frank-wolfe-run-0.json'), historyToFixture(first));
  fs.writeFileSync(path.join(dir, 'frank-wolfe-run-1.json'), historyToFixture(last));
}

test('FW-Soft with the worker running its update SIGKILLed: θT bit-identical', { timeout: 300_000 }, async (t) => {
  const h = await start('soft-kill', SOFT);
  const victimId = await waitFor(
    async () => {
      const pending = (await h.describe()).raw.pendingActivities ?? [];
      const upd = pending.find((a) => a.activityType?.name === 'fwUpdate' && a.lastWorkerIdentity);
      return upd?.lastWorkerIdentity ?? undefined;
    },
    120_000,
    'an FW-Soft update running on a worker',
  );
  const victim = workers.find((w) => victimId.startsWith(`${w.pid}@`));
  assert.ok(victim, `the update runs on one of our workers (${victimId})`);
  victim.kill('SIGKILL');
  const r = (await h.result()) as FwResult;
  await assertMatches(r, softRef, 'SIGKILL during the soft update');
  const hist = await h.fetchHistory();
  const failures = (hist.events ?? []).filter((e) => e.activityTaskTimedOutEventAttributes).length;
  const retried = (hist.events ?? []).some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  assert.ok(retried || failures > 0, 'the killed update was retried on another worker');
  t.diagnostic(
    `killed pid ${victim.pid} during an update; soft selections ${JSON.stringify(softRef.iterations.map((i) => i.picks))}`,
  );
});

test('cancel keeps the last θt in the work prefix and publishes nothing', { timeout: 300_000 }, async () => {
  const h = await start('cancel', { ...SOFT, iterations: 50, adamerging_steps: 200 });
  const theta1 = thetaKey({ workPrefix: workPrefixFor(out('cancel'), h.workflowId) }, 1);
  await waitFor(async () => (await storeFor(theta1).stat(theta1)) !== null, 180_000, 'θ1');
  const c = await runCli(['cancel', h.workflowId], { MERGEFLOW_TASK_QUEUE: queue });
  assert.equal(c.code, 0, c.stderr);
  await assert.rejects(h.result(), (e) => e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure);
  const st = await runCli(['status', h.workflowId, '--json']);
  const status = JSON.parse(st.stdout) as { status: string; progress: FwProgress };
  assert.equal(status.status, 'CANCELLED');
  assert.equal(status.progress.phase, 'cancelled');
  assert.ok(status.progress.thetaUri && (await storeFor(theta1).stat(status.progress.thetaUri)), 'θt is kept');
  assert.equal(await storeFor(out('cancel')).stat(`${out('cancel')}/model.safetensors`), null, 'nothing published');
});
