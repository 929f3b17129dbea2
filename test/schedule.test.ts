/**
 * Nightly merges as Temporal Schedules, against the real Temporal and S3 servers and a real worker: create, update
 * by the same name, describe (next times, last runs), trigger a real run whose output folder is named for its
 * scheduled time and whose model is the newest checkpoint under a prefix; pause, delete.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { SafetensorsFile } from '../core/safetensors';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import { readJson, storeFor } from '../core/store';
import { newestCheckpoint } from '../core/schedule/latest';
import { scheduledStamp } from '../core/schedule/template';
import { temporalTarget } from '../workers/temporal_config';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, waitFor, writeYaml } from './helpers/env';

const queue = uniq('sched');
const env = { MERGEFLOW_TASK_QUEUE: queue };
const name = uniq('nightly');
let worker: ChildProcess;
let connection: Connection;
let client: Client;

before(async () => {
  worker = startWorker(queue);
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
});
after(async () => {
  await runCli(['schedule', 'delete', name], env);
  await stopWorker(worker);
  await connection?.close();
});

const copy = async (from: string, to: string): Promise<void> => {
  const w = await storeFor(to).writer(to);
  await w.write(await storeFor(from).readAll(from));
  await w.commit();
};

test('latest_under picks the newest checkpoint, files and folders alike', async () => {
  const s3 = s3Prefix('latest');
  const ck = await writeSyntheticCheckpoints(`${s3}/in`, { seed: 1, models: 3, dim: 8, layers: 1 });
  await copy(ck.models[0].checkpoint, `${s3}/ft/run-b.safetensors`);
  // S3 modification times have one-second resolution
  await new Promise((r) => setTimeout(r, 1100));
  await copy(ck.models[1].checkpoint, `${s3}/ft/run-a/model.safetensors`);
  assert.equal((await newestCheckpoint(`${s3}/ft/`)).checkpoint, `${s3}/ft/run-a`);
  await new Promise((r) => setTimeout(r, 1100));
  await copy(ck.models[2].checkpoint, `${s3}/ft/run-c.safetensors`);
  assert.equal((await newestCheckpoint(`${s3}/ft`)).checkpoint, `${s3}/ft/run-c.safetensors`);
  await assert.rejects(newestCheckpoint(`${s3}/nothing/`), /no \.safetensors checkpoint under this prefix/);
});

test('AdaMerging: a task model given as latest_under is the newest checkpoint when the run starts', async () => {
  const s3 = s3Prefix('latest-ada');
  const fx = await writeAdaFixture(`${s3}/in`, { tasks: 2, rows: 8 });
  const copyFolder = async (from: string, to: string) => {
    for (const f of ['config.json', 'model.safetensors']) await copy(`${from}/${f}`, `${to}/${f}`);
  };
  // an older fine-tune of task 0 (task 1's weights stand in for it), then the newest one
  await copyFolder(fx.tasks[1].model, `${s3}/ft/task0/run-1`);
  await new Promise((r) => setTimeout(r, 1100));
  await copyFolder(fx.tasks[0].model, `${s3}/ft/task0/run-2`);
  const run = async (label: string, model0: unknown) => {
    const cfg = validateConfig(
      {
        method: 'adamerging',
        base: fx.pretrained,
        tasks: [{ ...fx.tasks[0], model: model0 }, fx.tasks[1]],
        output: `${s3}/out/${label}`,
        parameters: { granularity: 'task', steps: 3, batch_size: 4, seed: 2, lr: 0.05 },
      },
      'test',
    );
    const h = await client.workflow.start('adaMergingRun', {
      taskQueue: queue,
      workflowId: uniq(`latest-ada-${label}`),
      args: [{ config: cfg }],
    });
    return (await h.result()) as { manifestUri: string; lambdaSafetensors: string };
  };
  const latest = await run('latest', { latest_under: `${s3}/ft/task0/` });
  const named = await run('named', `${s3}/ft/task0/run-2`);
  const manifest = (await readJson(latest.manifestUri, (w) => new Error(w))) as {
    config: { resolved_latest: { model: string; checkpoint: string }[] };
  };
  assert.deepEqual(
    manifest.config.resolved_latest.map((r) => [r.model, r.checkpoint]),
    [[fx.tasks[0].name, `${s3}/ft/task0/run-2`]],
  );
  const lambda = async (uri: string) => Buffer.from(await (await SafetensorsFile.open(uri)).readBytes('lambda'));
  assert.ok((await lambda(latest.lambdaSafetensors)).equals(await lambda(named.lambdaSafetensors)), 'same λ');
});

test('a checkpoint that is neither a URI nor { latest_under } is one line, exit 2', async () => {
  const dir = tmpDir('latest-bad');
  const cfg = writeYaml(path.join(dir, 'c.yaml'), {
    method: 'ties',
    base: path.join(dir, 'b.safetensors'),
    models: [{ name: 'a', checkpoint: { latest: 's3://x/y/' } }],
    output: path.join(dir, 'o.safetensors'),
  });
  const r = await runCli(['schedule', 'create', 'never', cfg, '--cron', '0 2 * * *'], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /models\.0\.checkpoint: expected a URI .* or \{ latest_under: URI \}/);
  const bad = await runCli(['schedule', 'create', 'never', cfg, '--cron', '0 2 * * *', '--overlap', 'sometimes'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected one of skip, buffer_one/);
});

test('schedule create, update, describe, trigger: a real run into a folder named for its scheduled time', async () => {
  const s3 = s3Prefix('sched');
  const dir = tmpDir('sched');
  const ck = await writeSyntheticCheckpoints(`${s3}/in`, { seed: 4, models: 3, dim: 16, layers: 2 });
  await copy(ck.models[0].checkpoint, `${s3}/ft/digits/old.safetensors`);
  await new Promise((r) => setTimeout(r, 1100));
  await copy(ck.models[1].checkpoint, `${s3}/ft/digits/new.safetensors`);
  const doc = {
    method: 'task_arithmetic',
    base: ck.base,
    models: [
      { name: 'digits', checkpoint: { latest_under: `${s3}/ft/digits/` } },
      { name: 'other', checkpoint: ck.models[2].checkpoint },
    ],
    output: `${s3}/nightly/{scheduled_time}/`,
    shards: 2,
  };
  const cfg = writeYaml(path.join(dir, 'nightly.yaml'), doc);
  const created = await runCli(
    ['schedule', 'create', name, cfg, '--cron', '0 2 * * *', '--timezone', 'UTC', '--paused', '--json'],
    env,
  );
  assert.equal(created.code, 0, created.stderr);
  const c = JSON.parse(created.stdout);
  assert.equal(c.status, 'created');
  assert.equal(c.cron, '0 2 * * *');
  assert.match(c.nextTimes[0], /T02:00:00\.000Z$/);
  // the same name again updates it
  const updated = await runCli(
    [
      'schedule',
      'create',
      name,
      cfg,
      '--cron',
      '30 3 * * *',
      '--overlap',
      'buffer_one',
      '--catchup-window',
      '2h',
      '--json',
    ],
    env,
  );
  assert.equal(updated.code, 0, updated.stderr);
  const u = JSON.parse(updated.stdout);
  assert.equal(u.status, 'updated');
  assert.equal(u.overlap, 'BUFFER_ONE');
  assert.equal(u.catchupWindow, 2 * 3600 * 1000);
  assert.match(u.nextTimes[0], /T03:30:00\.000Z$/);

  assert.equal((await runCli(['schedule', 'trigger', name], env)).code, 0);
  const desc = await waitFor(
    async () => {
      const d = JSON.parse((await runCli(['schedule', 'describe', name, '--json'], env)).stdout);
      return d.recentRuns.length ? d : undefined;
    },
    60_000,
    'the triggered run',
  );
  const runId = desc.recentRuns[0].runId as string;
  const h = client.workflow.getHandle(runId);
  const result = (await h.result()) as { output: { uri: string; sha256: string }; manifestUri: string };
  const scheduled = (await h.describe()).typedSearchAttributes.get({
    name: 'TemporalScheduledStartTime',
    type: 'DATETIME',
  } as never) as unknown as Date;
  assert.ok(scheduled instanceof Date, 'the run carries its scheduled time');
  assert.equal(result.output.uri, `${s3}/nightly/${scheduledStamp(scheduled)}/model.safetensors`);
  const manifest = (await readJson(result.manifestUri, (w) => new Error(w))) as {
    config: { resolved_latest: { model: string; checkpoint: string }[]; models: { checkpoint: string }[] };
  };
  assert.equal(manifest.config.resolved_latest[0].model, 'digits');
  assert.equal(manifest.config.resolved_latest[0].checkpoint, `${s3}/ft/digits/new.safetensors`);
  // the bytes are those of a merge that names the newest checkpoint directly
  const ref = await runLocalMerge(
    validateConfig(
      {
        ...doc,
        models: [{ name: 'digits', checkpoint: `${s3}/ft/digits/new.safetensors` }, doc.models[1]],
        output: path.join(dir, 'ref.safetensors'),
      },
      'test',
    ),
  );
  assert.equal(result.output.sha256, ref.output.sha256);

  const d = JSON.parse((await runCli(['schedule', 'describe', name, '--json'], env)).stdout);
  assert.equal(d.recentRuns[0].runId, runId);
  assert.ok(d.nextTimes.length >= 1);
  const list = JSON.parse((await runCli(['schedule', 'list', '--json'], env)).stdout) as { name: string }[];
  assert.ok(list.some((s) => s.name === name));
  assert.equal((await runCli(['schedule', 'unpause', name], env)).code, 0);
  assert.equal(JSON.parse((await runCli(['schedule', 'describe', name, '--json'], env)).stdout).paused, false);
  assert.equal((await runCli(['schedule', 'pause', name], env)).code, 0);
  assert.equal(JSON.parse((await runCli(['schedule', 'describe', name, '--json'], env)).stdout).paused, true);
  assert.equal((await runCli(['schedule', 'delete', name], env)).code, 0);
  const gone = await runCli(['schedule', 'describe', name], env);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /no schedule/);
});
