/**
 * Resuming data-free merges and collecting stopped runs' work, against the real Temporal and S3 servers and a
 * real worker: a TIES run terminated while merging is resumed with byte-identical output and without redoing a
 * committed unit (counted in the resumed run's history); a changed input is refused, then redone when allowed;
 * `gc` removes only the work of runs that stopped longer ago than asked.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import { storeFor } from '../core/store';
import { temporalTarget } from '../workers/temporal_config';
import { checkWorkOutside, workPrefixFor } from '../core/resume/work';
import { runCli, startWorker, stopWorker, tmpDir, uniq, waitFor, writeYaml } from './helpers/env';

const queue = uniq('resume');
const env = { MERGEFLOW_TASK_QUEUE: queue };
let worker: ChildProcess;
let connection: Connection;
let client: Client;

before(async () => {
  // one activity at a time: a run stopped after its first committed part still has parts to do
  worker = startWorker(queue, { MERGEFLOW_WORKER_ACTIVITIES: '1' });
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
});
after(async () => {
  await stopWorker(worker);
  await connection?.close();
});

const SHARDS = 4;

async function tiesRun(label: string, seed: number) {
  const dir = tmpDir(label);
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed, models: 3, dim: 512, layers: 6 });
  const doc = {
    method: 'ties',
    base: ck.base,
    models: ck.models,
    output: path.join(dir, 'out', 'm.safetensors'),
    shards: SHARDS,
  };
  const cfg = writeYaml(path.join(dir, 'c.yaml'), doc);
  const started = await runCli(['run', cfg, '--json'], env);
  assert.equal(started.code, 0, started.stderr);
  const runId = JSON.parse(started.stdout).runId as string;
  const work = path.join(dir, 'out', '.mergeflow-work', runId);
  return { dir, ck, doc, runId, work, ledger: path.join(work, 'committed') };
}

const ledgerKeys = (ledger: string, kind: string): string[] =>
  fs.existsSync(ledger) ? fs.readdirSync(ledger).filter((f) => f.startsWith(`${kind}-`)) : [];

/** The output of an uninterrupted in-process merge of the same config (to another file). */
async function reference(doc: Record<string, unknown>, dir: string): Promise<Buffer> {
  const out = path.join(dir, 'ref', 'm.safetensors');
  const r = await runLocalMerge(validateConfig({ ...doc, output: out }, 'test'));
  return Buffer.from(await storeFor(r.output.uri).readAll(r.output.uri));
}

async function scheduledActivities(h: WorkflowHandle, type: string): Promise<number> {
  const hist = await h.fetchHistory();
  return (hist.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).length;
}

test('the work prefix lies beside the output, never inside an output folder', () => {
  assert.equal(workPrefixFor('s3://b/merged/out/', 'r1'), 's3://b/merged/.mergeflow-work/r1/');
  assert.equal(workPrefixFor('s3://b/merged/m.safetensors', 'r1'), 's3://b/merged/.mergeflow-work/r1/');
  assert.equal(workPrefixFor('file:///x/nightly/20261127T020000Z', 'r2'), 'file:///x/nightly/.mergeflow-work/r2/');
  checkWorkOutside('s3://b/merged/out', workPrefixFor('s3://b/merged/out', 'r1'));
  assert.throws(
    () => checkWorkOutside('s3://b/out', 's3://b/out/.mergeflow-work/r1/'),
    /lies inside the output folder/,
  );
});

test('a TIES run terminated while merging resumes: committed units reused, output byte-identical', async () => {
  const run = await tiesRun('resume', 21);
  await waitFor(() => ledgerKeys(run.ledger, 'part').length >= 1, 120_000, 'a committed part');
  await client.workflow.getHandle(run.runId).terminate('test: stop mid-merge');
  // the work stays beside the output, nothing is published
  const parts = ledgerKeys(run.ledger, 'part').length;
  const passes = ledgerKeys(run.ledger, 'pass').length;
  assert.ok(parts >= 1 && passes === 3 * SHARDS, `committed: ${parts} parts, ${passes} pass results`);
  assert.ok(!fs.existsSync(path.join(run.dir, 'out', 'm.safetensors')));

  const res = await runCli(['resume', run.runId, '--wait', '--json'], env);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.status, 'completed');
  assert.equal(out.resumedFrom, run.runId);
  // parts the terminated attempt committed after we counted are reused too: at least what we counted
  assert.ok(out.reused.part >= parts, `reused ${out.reused.part} parts, ${parts} were committed`);
  assert.equal(out.reused.pass, 3 * SHARDS);
  const resumed = client.workflow.getHandle(out.runId);
  assert.equal(await scheduledActivities(resumed, 'mapShard'), 0, 'no pass is redone');
  assert.equal(await scheduledActivities(resumed, 'mergeShard'), SHARDS - out.reused.part, 'only missing parts merge');

  const got = fs.readFileSync(path.join(run.dir, 'out', 'm.safetensors'));
  assert.ok(got.equals(await reference(run.doc, run.dir)), 'byte-identical to an uninterrupted run');
  assert.ok(!fs.existsSync(run.work), 'the work prefix is cleared once published');
  const list = JSON.parse((await runCli(['list', '--json', '-n', '500'], env)).stdout) as {
    runId: string;
    resumedFrom?: string;
  }[];
  assert.equal(list.find((r) => r.runId === out.runId)?.resumedFrom, run.runId, 'list links the resumed run');
  const again = await runCli(['resume', out.runId], env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /is COMPLETED; there is nothing to resume/);
});

/** The folder's sorted listing once it has not changed for 3 s (activities of a terminated run finish on their own). */
async function settledListing(dir: string): Promise<string[]> {
  let last = fs.readdirSync(dir).sort();
  for (let stable = 0, i = 0; stable < 3 && i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = fs.readdirSync(dir).sort();
    stable = now.join('\n') === last.join('\n') ? stable + 1 : 0;
    last = now;
  }
  return last;
}

test('a changed input is refused; --allow-changed-inputs redoes the work with the new bytes', async () => {
  const run = await tiesRun('changed', 22);
  await waitFor(() => ledgerKeys(run.ledger, 'pass').length >= 1, 120_000, 'a committed pass result');
  await client.workflow.getHandle(run.runId).terminate('test: stop');
  // replace model 0 by model 1's bytes (same size, other content)
  const m0 = new URL(run.ck.models[0].checkpoint).pathname;
  fs.copyFileSync(new URL(run.ck.models[1].checkpoint).pathname, m0);
  // an activity that was running when the run was terminated may still commit its unit: wait until none does
  const ledgerBefore = await settledListing(run.ledger);

  const refused = await runCli(['resume', run.runId], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^mergeflow: cannot resume .*model-0\.safetensors changed .*--allow-changed-inputs/);
  assert.deepEqual(fs.readdirSync(run.ledger).sort(), ledgerBefore, 'the committed work is untouched');
  const runs = JSON.parse((await runCli(['list', '--json', '-n', '500'], env)).stdout) as { resumedFrom?: string }[];
  assert.ok(!runs.some((r) => r.resumedFrom === run.runId), 'no run was started');

  const res = await runCli(['resume', run.runId, '--allow-changed-inputs', '--wait', '--json'], env);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.deepEqual(out.reused, { pass: 0, coefficients: 0, part: 0 });
  assert.equal(out.changedInputs.length, 1);
  const got = fs.readFileSync(path.join(run.dir, 'out', 'm.safetensors'));
  assert.ok(got.equals(await reference(run.doc, run.dir)), 'the output is the merge of the current inputs');
});

test('gc removes only the work of runs stopped longer ago than --older-than; --dry-run removes nothing', async () => {
  const stopped = async (label: string, seed: number) => {
    const run = await tiesRun(label, seed);
    await waitFor(() => fs.existsSync(path.join(run.work, 'run.json')), 120_000, 'the run record');
    const h = client.workflow.getHandle(run.runId);
    await h.terminate('test: stop');
    return { ...run, closed: (await h.describe()).closeTime!.getTime() };
  };
  const old = await stopped('gc-old', 31);
  await new Promise((r) => setTimeout(r, 15_000));
  const recent = await stopped('gc-recent', 32);
  const root = path.dirname(old.dir);
  // a threshold just under the old run's age when the command starts: the CLI's clock reads later still (by its
  // start-up, seconds on a loaded machine), which moves the cut toward the recent run but not past it (15 s later)
  const olderThan = () => `${Date.now() - old.closed - 500}ms`;
  const dry = await runCli(['gc', '--under', root, '--older-than', olderThan(), '--dry-run', '--json'], env);
  assert.equal(dry.code, 0, dry.stderr);
  const would = JSON.parse(dry.stdout).removed as { workPrefix: string }[];
  assert.ok(
    would.some((r) => r.workPrefix.includes(old.runId)),
    'the old run is listed',
  );
  assert.ok(!would.some((r) => r.workPrefix.includes(recent.runId)), 'the recent run is not');
  assert.ok(fs.existsSync(path.join(old.work, 'run.json')), 'dry run removed nothing');

  const gc = await runCli(['gc', '--under', root, '--older-than', olderThan(), '--json'], env);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(!fs.existsSync(old.work), "the old run's work is gone");
  assert.ok(fs.existsSync(path.join(recent.work, 'run.json')), "the recent run's work is kept");
  assert.deepEqual(fs.readdirSync(path.join(old.dir, 'in')).sort(), fs.readdirSync(path.join(recent.dir, 'in')).sort());
  const bad = await runCli(['gc', '--older-than', 'abc'], env);
  assert.equal(bad.code, 2);
  // a run whose work is gone cannot be resumed, with a message saying so
  const gone = await runCli(['resume', old.runId], env);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /is gone/);
});
