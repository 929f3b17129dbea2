/**
 * AdaMerging as a durable run against the real Temporal and S3 servers: the same config and seed give λ
 * bit-identical to the in-process reference (runAdaMergingLocal with Adam) with 1 worker, with 3 workers, with
 * the worker running an epoch SIGKILLed mid-epoch, and with a forced continue-as-new; the outputs are published.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { CancelledFailure, Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { AdamergingConfig } from '../core/config/schema';
import { OptimizerStep, runAdaMergingLocal, LocalRunResult } from '../core/merge/adamerging/local_run';
import { latestCheckpoint } from '../core/merge/adamerging/epoch';
import type { AdaPlan, AdaProgress, AdaResult, AdaRunInput } from '../core/merge/adamerging/run_types';
import { ADAM_DEFAULTS, adamInit, AdamState, adamStep } from '../core/optim/adam';
import { loadAdamState } from '../core/optim/state';
import { fromFloat64, SafetensorsFile } from '../core/safetensors';
import { readJson, storeFor } from '../core/store';
import { initBackend } from '../core/tensor/backend';
import { temporalTarget } from '../workers/temporal_config';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import * as path from 'node:path';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, waitFor, writeYaml } from './helpers/env';
import { epochResults } from './helpers/history';

const STEPS = 16;
const SEED = 7;
const LR = 0.02;
const prefix = s3Prefix('ada-flow');
const queue = uniq('ada-flow');
const workers: ChildProcess[] = [];
let fx: AdaFixture;
let ref: LocalRunResult;
let refState: AdamState;
let connection: Connection;
let client: Client;

before(async () => {
  fx = await writeAdaFixture(`${prefix}/in`);
  await initBackend(undefined, () => undefined);
  let st: AdamState | undefined;
  const adam: OptimizerStep = (lambda, grad) => {
    st = adamStep(st ?? adamInit(Float64Array.from(lambda)), grad, { ...ADAM_DEFAULTS, lr: LR });
    return Float32Array.from(st.params);
  };
  ref = await runAdaMergingLocal({
    pretrained: fx.pretrained,
    tasks: fx.tasks,
    granularity: 'layer',
    steps: STEPS,
    seed: SEED,
    batchSize: 4,
    optimizer: adam,
  });
  refState = st!;
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
      parameters: { granularity: 'layer', steps: STEPS, batch_size: 4, seed: SEED, lr: LR, ...parameters },
    },
    'test',
  );
  assert.equal(cfg.method, 'adamerging');
  return cfg as AdamergingConfig;
}

async function start(label: string, input: Omit<AdaRunInput, 'config'>, params: Record<string, unknown>) {
  return client.workflow.start('adaMergingRun', {
    taskQueue: queue,
    workflowId: uniq(`ada-${label}`),
    args: [{ config: config(label, params), heartbeatTimeoutSeconds: 4, affinityTimeoutSeconds: 3, ...input }],
  });
}

/** λ (F64 bytes) and the losses the run published equal the in-process reference's. */
async function assertMatchesReference(r: AdaResult, what: string): Promise<void> {
  const f = await SafetensorsFile.open(r.lambdaSafetensors);
  const got = Buffer.from(await f.readBytes('lambda'));
  assert.ok(got.equals(Buffer.from(fromFloat64(refState.params))), `${what}: λ is bit-identical to the reference`);
  const losses = (await readJson(r.losses, (w) => new Error(w))) as { steps: { step: number; loss: number[] }[] };
  assert.deepEqual(
    losses.steps.map((s) => s.loss),
    ref.losses,
    `${what}: losses per task per step`,
  );
  assert.equal(r.steps, STEPS);
}

test(
  '1 worker: λ bit-identical to the in-process reference; outputs and manifest published',
  { timeout: 300_000 },
  async (t) => {
    t.diagnostic(
      `reference: ${ref.secondsPerStep.length} steps, mean ${(ref.secondsPerStep.reduce((a, b) => a + b, 0) / STEPS).toFixed(3)} s/step`,
    );
    const h = await start('one', {}, { steps_per_epoch: 4, checkpoint_every: 2 });
    const r = (await h.result()) as AdaResult;
    await assertMatchesReference(r, '1 worker');
    assert.equal(r.epochs, 4);
    const epochs = await epochResults(h);
    assert.equal(epochs.length, 4);
    // after the first epoch, every epoch ran where θ0 and the task vectors were cached
    assert.deepEqual(
      epochs.map((e) => e.cacheHit),
      [false, true, true, true],
    );
    assert.ok(new Set(epochs.map((e) => e.queue)).size === 1 && epochs[0].queue.startsWith(`${queue}-`));
    const manifest = (await readJson(r.manifestUri, (w) => new Error(w))) as {
      files: string[];
      output: { sha256: string };
    };
    assert.equal(manifest.output.sha256, r.output.sha256);
    for (const f of [
      'model.safetensors',
      'config.json',
      'lambda.json',
      'lambda.safetensors',
      'losses.json',
      'report.png',
    ])
      assert.ok(manifest.files.includes(f) && (await storeFor(r.output.uri).stat(`${prefix}/out/one/${f}`)), f);
    const png = Buffer.from(await storeFor(r.report).readAll(r.report));
    assert.ok(png.subarray(1, 4).toString() === 'PNG' && png.length > 2000, 'report.png is a PNG');
    assert.deepEqual(
      await storeFor(prefix).list(`${prefix}/out/.mergeflow-work/${h.workflowId}/`),
      [],
      'work prefix cleared',
    );
    const o = r.orchestration;
    t.diagnostic(
      `1 worker: ${STEPS} steps in ${r.epochs} epochs; epochs ${o.epochWallSeconds.toFixed(2)} s wall, ${o.stepSeconds.toFixed(2)} s in steps ` +
        `(${((o.stepSeconds / STEPS) * 1000).toFixed(1)} ms/step), orchestration ${(o.overheadFraction * 100).toFixed(1)} %; timings ${JSON.stringify(r.timings)}`,
    );
  },
);

test(
  '3 workers, then the worker running an epoch SIGKILLed mid-epoch: λ bit-identical',
  { timeout: 300_000 },
  async (t) => {
    workers.push(startWorker(queue), startWorker(queue));
    const three = (await (await start('three', {}, { steps_per_epoch: 8, checkpoint_every: 3 })).result()) as AdaResult;
    await assertMatchesReference(three, '3 workers');

    const h = await start('kill', {}, { steps_per_epoch: 8, checkpoint_every: 2 });
    const runId = h.workflowId;
    const mid = `${prefix}/out/.mergeflow-work/${runId}/state/step-00000010.safetensors`;
    // the second epoch (steps 8..16, on the worker's own queue) has written its step-10 checkpoint: kill that worker
    await waitFor(async () => (await storeFor(mid).stat(mid)) !== null, 120_000, 'the step-10 checkpoint');
    const pending = (await h.describe()).raw.pendingActivities ?? [];
    const identity = pending.find((a) => a.activityType?.name === 'adaMergingEpoch')?.lastWorkerIdentity ?? '';
    const victim = workers.find((w) => identity.startsWith(`${w.pid}@`));
    assert.ok(victim, `the epoch runs on one of our workers (${identity})`);
    victim.kill('SIGKILL');
    // every checkpoint the killed attempt wrote (its retry waits out the 4 s heartbeat timeout before it writes)
    const lastWritten = await latestCheckpoint(
      { workPrefix: `${prefix}/out/.mergeflow-work/${runId}/` } as AdaPlan,
      8,
      16,
    );
    assert.ok(lastWritten && lastWritten.step >= 10);
    const r = (await h.result()) as AdaResult;
    await assertMatchesReference(r, 'SIGKILL mid-epoch');
    const epochs = await epochResults(h);
    const resumed = epochs.find((e) => e.resumedFrom > 8);
    assert.ok(
      resumed,
      `an epoch resumed from a mid-epoch checkpoint: ${JSON.stringify(epochs.map((e) => e.resumedFrom))}`,
    );
    // steps recomputed ≤ M: the retry resumed from the last state the killed attempt wrote, and that attempt got
    // at most M = 2 steps past it (the M-th would have written the next checkpoint before going on)
    assert.equal(resumed.resumedFrom, lastWritten.step, 'resumed from the last state written before the kill');
    assert.ok(!resumed.queue.endsWith(`-${victim.pid}`), 'a surviving worker finished it');
    t.diagnostic(
      `killed pid ${victim.pid} after step 10; the retry resumed from step ${resumed.resumedFrom} on ${resumed.queue}`,
    );
  },
);

test(
  'forced continue-as-new every epoch: λ bit-identical; progress and status follow the chain',
  { timeout: 300_000 },
  async () => {
    const h = await start('can', { epochsPerRun: 1 }, { steps_per_epoch: 5, checkpoint_every: 5 });
    const firstRun = h.firstExecutionRunId;
    const r = (await h.result()) as AdaResult;
    await assertMatchesReference(r, 'continue-as-new');
    assert.equal(r.epochs, 4);
    const last = await client.workflow.getHandle(h.workflowId).describe();
    assert.notEqual(last.runId, firstRun, 'the run continued as new');
    // the last run still names its work prefix (resume and gc find the work by it)
    assert.equal(last.memo?.workPrefix, `${prefix}/out/.mergeflow-work/${h.workflowId}/`);
    const p = await client.workflow.getHandle(h.workflowId).query<AdaProgress>('progress');
    assert.equal(p.phase, 'completed');
    assert.equal(p.done, STEPS);
    // the first run's history holds one epoch, not the whole run
    const first = await epochResults(client.workflow.getHandle(h.workflowId, firstRun));
    assert.equal(first.length, 1);
  },
);

test('cancel stops the running epoch cleanly and leaves the last state usable', { timeout: 300_000 }, async () => {
  const h = await start('cancel', {}, { steps: 5000, steps_per_epoch: 2500, checkpoint_every: 5 });
  const work = `${prefix}/out/.mergeflow-work/${h.workflowId}/state/`;
  const ck = `${work}step-00000010.safetensors`;
  await waitFor(async () => (await storeFor(ck).stat(ck)) !== null, 120_000, 'the step-10 checkpoint');
  const c = await runCli(['cancel', h.workflowId]);
  assert.equal(c.code, 0, c.stderr);
  await assert.rejects(h.result(), (e) => e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure);
  const st = await runCli(['status', h.workflowId, '--json']);
  const status = JSON.parse(st.stdout) as { status: string; progress: AdaProgress };
  assert.equal(status.status, 'CANCELLED');
  assert.equal(status.progress.phase, 'cancelled');
  // the state the epoch wrote when it stopped is the last one, and it loads
  const written = await storeFor(work).list(work);
  assert.equal(status.progress.stateUri, written[written.length - 1]);
  const { state } = await loadAdamState(status.progress.stateUri!);
  assert.equal(state.step, status.progress.done);
  assert.ok(state.step >= 10 && state.step < 2500, `stopped mid-epoch at step ${state.step}`);
  assert.ok(state.params.every(Number.isFinite) && state.params.length === ref.lambda.length);
  const desc = await h.describe();
  assert.equal((desc.searchAttributes as Record<string, unknown[]>).MergeStatus?.[0], 'cancelled');
});

test(
  'a run terminated mid-epoch, resumed with the CLI: the resumed run redoes no finished epoch and λ is bit-identical',
  { timeout: 300_000 },
  async () => {
    const h = await start('resume', {}, { steps_per_epoch: 8, checkpoint_every: 2 });
    const ledger = `${prefix}/out/.mergeflow-work/${h.workflowId}/committed/`;
    // the second epoch (steps 8..16) has recorded its step-10 checkpoint: stop the run there
    await waitFor(
      async () => (await storeFor(ledger).stat(`${ledger}state-00000010.json`)) !== null,
      120_000,
      'the step-10 checkpoint in the ledger',
    );
    // stop the worker too, so the terminated run's epoch cannot go on writing; a fresh worker serves the resume
    for (const w of workers.splice(0)) await stopWorker(w, 'SIGKILL');
    await h.terminate('test: stop mid-epoch');
    workers.push(startWorker(queue));
    const res = await runCli(['resume', h.workflowId, '--wait', '--json'], { MERGEFLOW_TASK_QUEUE: queue }, 240_000);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { runId: string; resumedFrom: string; status: string };
    assert.equal(out.resumedFrom, h.workflowId);
    const resumed = client.workflow.getHandle(out.runId);
    const r = (await resumed.result()) as AdaResult;
    await assertMatchesReference(r, 'resumed after terminate');
    const epochs = await epochResults(resumed);
    assert.equal(epochs.length, 1, 'only the unfinished second epoch ran again');
    assert.ok(epochs[0].resumedFrom >= 10, `it started at a recorded checkpoint (${epochs[0].resumedFrom})`);
    assert.equal((await resumed.describe()).memo?.resumedFrom, h.workflowId);
  },
);

test(
  'AdaMerging++ task-wise from the CLI on labeled data: accuracy, λ per task, chart; results shows them',
  { timeout: 300_000 },
  async () => {
    const lab = await writeAdaFixture(`${prefix}/labeled`, { labeled: true, tasks: 3, seed: 4 });
    const dir = tmpDir('ada-cli');
    const output = `${prefix}/out/cli`;
    const cfg = writeYaml(path.join(dir, 'ada.yaml'), {
      method: 'adamerging',
      base: lab.pretrained,
      tasks: lab.tasks,
      output,
      parameters: { steps: 6, batch_size: 4, steps_per_epoch: 3 },
    });
    const env = { MERGEFLOW_TASK_QUEUE: queue };
    const r = await runCli(
      ['run', cfg, '--wait', '--json', '--set', 'parameters.granularity=task', '--set', 'parameters.variant=ties'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { runId: string; status: string; report: string; steps: number };
    assert.equal(run.status, 'completed');
    assert.equal(run.steps, 6);
    assert.equal(run.report, `${output}/report.png`);
    const res = await runCli(['results', run.runId], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^steps +6 in 2 epochs; loss per task at the last step [0-9.]+, [0-9.]+, [0-9.]+$/m);
    assert.match(res.stdout, /^λ +task2: mean [0-9.]+ /m);
    assert.match(res.stdout, /^accuracy +average [0-9.]+ %; task0 [0-9.]+, task1 [0-9.]+, task2 [0-9.]+$/m);
    assert.match(res.stdout, /^report +s3:\/\/.*\/out\/cli\/report\.png$/m);
    const json = JSON.parse((await runCli(['results', run.runId, '--json'], env)).stdout) as AdaResult;
    const lambda = (await readJson(json.lambdaJson, (w) => new Error(w))) as {
      lambda: number[];
      used: number[];
      variant: string;
    };
    assert.equal(lambda.variant, 'ties');
    assert.equal(lambda.lambda.length, 3, 'task-wise: one λ per task');
    const accuracy = (await readJson(`${output}/accuracy.json`, (w) => new Error(w))) as {
      tasks: Record<string, number>;
    };
    assert.deepEqual(Object.keys(accuracy.tasks), ['task0', 'task1', 'task2']);
    const losses = (await readJson(json.losses, (w) => new Error(w))) as { steps: { lambda: number[] }[] };
    assert.equal(losses.steps.length, 6);
    assert.ok(
      losses.steps.every((s) => s.lambda.length === 3),
      'task-wise runs record λ per step',
    );
    // the model loads and differs from θ0 by the learned combination: its bytes are the published ones
    const st = await storeFor(json.output.uri).stat(json.output.uri);
    assert.equal(st?.size, json.output.bytes);
  },
);
