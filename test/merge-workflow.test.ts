/** Merges through the real Temporal dev server, a real worker process and the real S3 server. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { storeFor } from '../core/store';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, writeYaml } from './helpers/env';

const queue = uniq('wf');
const env = { MERGEFLOW_TASK_QUEUE: queue };
let worker: ChildProcess;

before(() => {
  worker = startWorker(queue);
});
after(async () => {
  await stopWorker(worker);
});

test('the same TIES merge from S3 and from files gives byte-identical outputs, with a manifest', async () => {
  const dir = tmpDir('wf');
  const s3 = s3Prefix('wf');
  const local = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 3, models: 3, dim: 48, layers: 3 });
  const remote = await writeSyntheticCheckpoints(`${s3}/in`, { seed: 3, models: 3, dim: 48, layers: 3 });
  const cfgFile = (name: string, ck: typeof local, output: string) =>
    writeYaml(path.join(dir, name), {
      method: 'ties',
      base: ck.base,
      models: ck.models,
      parameters: { scaling: 0.3, keep: 0.2 },
      output,
      shards: 3,
    });
  const a = await runCli(
    ['run', cfgFile('file.yaml', local, path.join(dir, 'out', 'ties.safetensors')), '--wait', '--json'],
    env,
  );
  assert.equal(a.code, 0, a.stderr);
  const b = await runCli(['run', cfgFile('s3.yaml', remote, `${s3}/out/ties.safetensors`), '--wait', '--json'], env);
  assert.equal(b.code, 0, b.stderr);
  const ra = JSON.parse(a.stdout);
  const rb = JSON.parse(b.stdout);
  assert.equal(ra.status, 'completed');
  assert.equal(ra.sha256, rb.sha256);
  const bytesA = fs.readFileSync(path.join(dir, 'out', 'ties.safetensors'));
  const bytesB = Buffer.from(await storeFor(rb.output).readAll(rb.output));
  assert.ok(bytesA.equals(bytesB), 'byte-identical');
  const manifest = JSON.parse(Buffer.from(await storeFor(rb.manifest).readAll(rb.manifest)).toString());
  assert.equal(manifest.output.sha256, rb.sha256);
  assert.equal(manifest.method, 'ties');
  assert.equal(manifest.inputs.base[0].bytes, (await storeFor(remote.base).stat(remote.base))!.size);
  assert.equal(Object.keys(manifest.inputs.models).length, 3);
  assert.match(manifest.inputs.models.task0[0].sha256, /^[0-9a-f]{64}$/);
  // the work prefix is cleared after publishing
  assert.deepEqual(await storeFor(s3).list(`${s3}/out/.mergeflow-work/`), []);

  // status, results and list know the run
  const st = await runCli(['status', ra.runId, '--json'], env);
  assert.equal(JSON.parse(st.stdout).status, 'COMPLETED');
  assert.equal(JSON.parse(st.stdout).progress.phase, 'completed');
  const res = await runCli(['results', rb.runId, '--json'], env);
  assert.equal(JSON.parse(res.stdout).output.sha256, rb.sha256);
  const list = await runCli(['list', '--json', '--status', 'completed', '-n', '200'], env);
  const ids = (JSON.parse(list.stdout) as { runId: string }[]).map((r) => r.runId);
  assert.ok(ids.includes(ra.runId) && ids.includes(rb.runId), 'list shows both runs');
});

test('--set overrides a field, and a Hugging Face folder output keeps config.json', async () => {
  const dir = tmpDir('wfset');
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 5, models: 2, dim: 16, layers: 1 });
  // make the base a Hugging Face folder
  fs.mkdirSync(path.join(dir, 'base'));
  fs.renameSync(new URL(ck.base).pathname, path.join(dir, 'base', 'model.safetensors'));
  fs.writeFileSync(path.join(dir, 'base', 'config.json'), '{"model_type":"demo"}');
  const cfg = writeYaml(path.join(dir, 'c.yaml'), {
    method: 'task_arithmetic',
    base: path.join(dir, 'base'),
    models: ck.models,
    output: path.join(dir, 'merged'),
  });
  const r = await runCli(
    ['run', cfg, '--set', 'parameters.scaling=0.5', '--set', 'name=settest', '--wait', '--json'],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.runId, /^merge-settest-/);
  assert.ok(fs.existsSync(path.join(dir, 'merged', 'model.safetensors')));
  assert.equal(fs.readFileSync(path.join(dir, 'merged', 'config.json'), 'utf8'), '{"model_type":"demo"}');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'merged', 'mergeflow.manifest.json'), 'utf8'));
  assert.equal(manifest.parameters.scaling, 0.5);
});

test('cancel stops a running merge and publishes nothing; its committed work stays for resume', async () => {
  const dir = tmpDir('wfcancel');
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 9, models: 3, dim: 1024, layers: 24 });
  const output = path.join(dir, 'out', 'm.safetensors');
  const cfg = writeYaml(path.join(dir, 'c.yaml'), {
    method: 'ties',
    base: ck.base,
    models: ck.models,
    output,
    shards: 2,
  });
  const started = await runCli(['run', cfg, '--json'], env);
  assert.equal(started.code, 0, started.stderr);
  const { runId } = JSON.parse(started.stdout);
  for (let i = 0; i < 100; i++) {
    const st = JSON.parse((await runCli(['status', runId, '--json'], env)).stdout);
    if (st.progress && st.progress.done >= 2) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const c = await runCli(['cancel', runId], env);
  assert.equal(c.code, 0, c.stderr);
  let st: { status: string; progress?: { phase: string } } = { status: 'RUNNING' };
  for (let i = 0; i < 150 && st.status === 'RUNNING'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    st = JSON.parse((await runCli(['status', runId, '--json'], env)).stdout);
  }
  assert.equal(st.status, 'CANCELLED');
  assert.equal(st.progress?.phase, 'cancelled');
  assert.ok(!fs.existsSync(output), 'nothing published');
  assert.ok(fs.existsSync(path.join(dir, 'out', '.mergeflow-work', runId, 'run.json')), 'the work is kept for resume');
  const again = await runCli(['cancel', runId], env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /is CANCELLED, not running/);
});
