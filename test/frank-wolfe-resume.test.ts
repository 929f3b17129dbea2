/**
 * Resuming Frank-Wolfe runs against the real Temporal and S3 servers and a real worker: an FW-Hard run (TA start,
 * layer-wise oracle) started with `mergeflow run` and terminated after its first iteration committed is listed by
 * `gc`, refused by `resume` while one of its inputs differs, and once the input is back, resumed with
 * `mergeflow resume --wait`: the resumed run redoes neither the start nor a committed iteration (read from its
 * history), and its model is byte-identical to an uninterrupted run's. Then, on a hand-made ledger in S3: the
 * resume point follows the unbroken chain of iterations and stops at one whose θ changed.
 *
 * MERGEFLOW_RECORD_FW_HISTORIES=DIR writes the stopped and the resumed run's histories as replay fixtures
 * (frank-wolfe-stopped.json, frank-wolfe-resumed.json; see frank-wolfe-replay.test.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { validateConfig } from '../core/config/load';
import type { FrankWolfeConfig } from '../core/config/schema';
import { frankWolfeResume, fwKeys } from '../core/merge/frank_wolfe/resume';
import type { FwPlan, FwResult } from '../core/merge/frank_wolfe/run_types';
import { ledgerPrefix, recordCommitted, verifiedLedger } from '../core/resume/ledger';
import { workPrefixFor } from '../core/resume/work';
import { putObject, sha256Of, storeFor } from '../core/store';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import { historyToFixture } from '../workers/history_fixture';
import { temporalTarget } from '../workers/temporal_config';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, waitFor, writeYaml } from './helpers/env';

const prefix = s3Prefix('fw-resume');
const queue = uniq('fw-resume');
const env = { MERGEFLOW_TASK_QUEUE: queue };
const ITERATIONS = 4;
const PARAMS = {
  variant: 'hard',
  oracle: 'layer',
  start: 'ta',
  iterations: ITERATIONS,
  proxy_samples: 8,
  step_size: 0.5,
  seed: 7,
};

let fx: AdaFixture;
let worker: ChildProcess;
let connection: Connection;
let client: Client;

before(async () => {
  fx = await writeAdaFixture(`${prefix}/in`, { tasks: 4, labeled: true, rows: 12 });
  worker = startWorker(queue);
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
});

after(async () => {
  await stopWorker(worker, 'SIGKILL');
  await connection?.close();
});

const out = (label: string) => `${prefix}/out/${label}`;

function doc(label: string) {
  return {
    method: 'frank_wolfe',
    base: fx.pretrained,
    pool: fx.tasks.map((t) => ({ name: t.name, checkpoint: t.model })),
    targets: fx.tasks.slice(0, 2).map((t) => ({ name: t.name, head: t.head, proxy: t.data, data: t.data })),
    output: out(label),
    shards: 2,
    parameters: PARAMS,
  };
}

/** The ledger's record names under a work prefix (sorted). */
async function ledger(work: string): Promise<string[]> {
  const p = ledgerPrefix(work);
  return (await storeFor(p).list(p)).map((u) => u.slice(p.length)).sort();
}

/** The ledger once it has not changed for 3 s (an activity of a terminated run finishes on its own). */
async function settledLedger(work: string): Promise<string[]> {
  let last = await ledger(work);
  for (let stable = 0, i = 0; stable < 3 && i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await ledger(work);
    stable = now.join('\n') === last.join('\n') ? stable + 1 : 0;
    last = now;
  }
  return last;
}

/** The activities of one type a run scheduled, with their inputs, from its history. */
async function scheduled(h: WorkflowHandle, type: string): Promise<{ iteration?: number }[]> {
  const events = (await h.fetchHistory()).events ?? [];
  return events
    .map((e) => e.activityTaskScheduledEventAttributes)
    .filter((a) => a?.activityType?.name === type)
    .map((a) => defaultPayloadConverter.fromPayload<{ iteration?: number }>(a!.input!.payloads![0]));
}

async function objectSha(uri: string): Promise<string> {
  const st = await storeFor(uri).stat(uri);
  assert.ok(st, `${uri} exists`);
  return sha256Of(uri, st.size);
}

test(
  'an FW-Hard run terminated after a committed iteration resumes without redoing it; the model is byte-identical',
  { timeout: 600_000 },
  async (t) => {
    const dir = tmpDir('fw-resume');
    const cfg = writeYaml(path.join(dir, 'stopped.yaml'), doc('stopped'));
    const started = await runCli(['run', cfg, '--json'], env);
    assert.equal(started.code, 0, started.stderr);
    const runId = JSON.parse(started.stdout).runId as string;
    // the uninterrupted run of the same config (another output folder), on the same worker meanwhile
    const plain = await client.workflow.start('frankWolfeRun', {
      taskQueue: queue,
      workflowId: uniq('fw-plain'),
      args: [{ config: validateConfig(doc('plain'), 'test') as FrankWolfeConfig, heartbeatTimeoutSeconds: 60 }],
    });

    const work = workPrefixFor(out('stopped'), runId);
    await waitFor(async () => (await ledger(work)).includes('iter-00000.json'), 300_000, 'iteration 0 committed');
    await client.workflow.getHandle(runId).terminate('test: stop after an iteration');
    const committed = await settledLedger(work);
    const iterations = committed.filter((k) => k.startsWith('iter-')).length;
    assert.ok(committed.includes('start.json') && iterations >= 1, `committed: ${committed.join(', ')}`);
    assert.equal(await storeFor(out('stopped')).stat(`${out('stopped')}/model.safetensors`), null, 'nothing published');

    // gc sees the stopped run's work (a dry run: nothing is removed)
    const gc = await runCli(['gc', '--under', `${prefix}/out`, '--older-than', '0s', '--dry-run', '--json'], env);
    assert.equal(gc.code, 0, gc.stderr);
    const listed = (JSON.parse(gc.stdout) as { removed: { workPrefix: string }[] }).removed.map((r) => r.workPrefix);
    assert.ok(listed.includes(work), `gc lists ${work}: ${listed.join(', ')}`);

    // a changed head (another target's bytes, same size) is refused, and nothing is touched or started
    const head = fx.tasks[0].head;
    const original = Buffer.from(await storeFor(head).readAll(head));
    await putObject(head, Buffer.from(await storeFor(fx.tasks[1].head).readAll(fx.tasks[1].head)));
    const refused = await runCli(['resume', runId], env);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^mergeflow: cannot resume .*head.* changed .*--allow-changed-inputs/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
    assert.deepEqual(await ledger(work), committed, 'the committed work is untouched');
    const runs = JSON.parse((await runCli(['list', '--json', '-n', '500'], env)).stdout) as { resumedFrom?: string }[];
    assert.ok(!runs.some((r) => r.resumedFrom === runId), 'no run was started');
    await putObject(head, original); // the same bytes again: the same ETag

    const res = await runCli(['resume', runId, '--wait', '--json'], env, 480_000);
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as { runId: string; status: string; resumedFrom: string; output: string };
    assert.equal(r.status, 'completed');
    assert.equal(r.resumedFrom, runId);
    const resumed = client.workflow.getHandle(r.runId);
    const result = (await resumed.result()) as FwResult;
    assert.equal(result.reused?.start, 1);
    assert.equal(result.reused?.iterations, iterations, 'every committed iteration is reused');
    assert.equal(result.iterations, ITERATIONS);
    assert.equal(result.objective.length, ITERATIONS, 'the objective history includes the reused iterations');

    // from the resumed run's history: no start merge, no θ0 copy, the first iteration it runs is the next one
    const events = (await resumed.fetchHistory()).events ?? [];
    assert.ok(!events.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes), 'no start merge');
    assert.deepEqual(await scheduled(resumed, 'fwCopyStart'), [], 'θ0 is not copied again');
    const updates = (await scheduled(resumed, 'fwUpdate')).map((i) => i.iteration);
    assert.deepEqual(
      updates,
      Array.from({ length: ITERATIONS - iterations }, (_, k) => iterations + k),
      'only the iterations after the committed ones run',
    );
    const grads = await scheduled(resumed, 'fwGradient');
    assert.ok(
      grads.every((g) => (g.iteration ?? -1) >= iterations),
      'no gradient of a committed iteration',
    );
    assert.equal(grads.length, (ITERATIONS - iterations) * 2 - (result.reused?.gradients ?? 0));

    const p = (await plain.result()) as FwResult;
    assert.equal(result.output.sha256, p.output.sha256, 'the same model as the uninterrupted run');
    assert.equal(await objectSha(result.output.uri), await objectSha(p.output.uri), 'the stored bytes too');
    assert.deepEqual(result.objective, p.objective, 'the same objective history');
    assert.deepEqual(await storeFor(work).list(work), [], 'the work prefix is cleared once published');
    const dir2 = process.env.MERGEFLOW_RECORD_FW_HISTORIES;
    if (dir2) {
      const stopped = await client.workflow.getHandle(runId).fetchHistory();
      fs.writeFileSync(path.join(dir2, 'frank-wolfe-stopped.json'), historyToFixture(stopped));
      fs.writeFileSync(path.join(dir2, 'frank-wolfe-resumed.json'), historyToFixture(await resumed.fetchHistory()));
    }
    t.diagnostic(`terminated after ${iterations} committed iteration(s); reused ${JSON.stringify(result.reused)}`);
  },
);

test('the resume point: the unbroken chain of iterations from θ0, cut where a θ changed', async () => {
  const work = `${prefix}/ledger/run-work/`;
  const plan = { params: { iterations: 4 }, targets: [{ name: 'a' }, { name: 'b' }] } as unknown as FwPlan;
  const obj = async (name: string, body: string) => {
    const uri = `${work}${name}`;
    await putObject(uri, Buffer.from(body));
    return uri;
  };
  await recordCommitted(work, fwKeys.start(), { from: 'x' }, await obj('theta-0', 'θ0'));
  for (let t = 0; t < 3; t++) {
    const rec = { iteration: t, lossPerTarget: [t, t], objective: 2 * t, picks: [] };
    await recordCommitted(work, fwKeys.iteration(t), rec, await obj(`theta-${t + 1}`, `θ${t + 1}`));
  }
  await recordCommitted(work, fwKeys.gradient(3, 0), { loss: 0.5, seconds: 1 }, await obj('g3a', 'g'));
  await recordCommitted(work, fwKeys.gradient(1, 1), { loss: 0.25, seconds: 1 }, await obj('g1b', 'g'));
  const found = async () => frankWolfeResume.findCommitted(plan, await verifiedLedger(work));

  let f = await found();
  assert.equal(f.startUri, `${work}theta-0`);
  assert.deepEqual(
    f.records.map((r) => r.iteration),
    [0, 1, 2],
  );
  assert.equal(f.theta, `${work}theta-3`);
  assert.deepEqual(f.gradients, [{ uri: `${work}g3a`, loss: 0.5, seconds: 1 }, null]);

  // θ2 altered (same size): iteration 1 is redone from θ1, with the gradient of iteration 1 that is there
  await obj('theta-2', 'θX');
  f = await found();
  assert.deepEqual(
    f.records.map((r) => r.iteration),
    [0],
  );
  assert.equal(f.theta, `${work}theta-1`);
  assert.deepEqual(f.gradients, [null, { uri: `${work}g1b`, loss: 0.25, seconds: 1 }]);

  // θ0 gone: nothing is reusable (every iteration read it)
  await storeFor(work).delete(`${work}theta-0`);
  f = await found();
  assert.equal(f.startUri, undefined);
  assert.deepEqual(f.records, []);
});
