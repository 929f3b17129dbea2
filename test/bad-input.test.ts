/** Bad input through the CLI and the real stack: one clear line, a non-zero exit, nothing under the output name. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { storeFor } from '../core/store';
import { fromFloat32, writeTensors } from '../core/safetensors';
import { fileUri, runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, writeYaml } from './helpers/env';

const queue = uniq('bad');
const env = { MERGEFLOW_TASK_QUEUE: queue };
let worker: ChildProcess;
let dir: string;
let ck: Awaited<ReturnType<typeof writeSyntheticCheckpoints>>;

before(async () => {
  worker = startWorker(queue);
  dir = tmpDir('bad');
  ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 1, models: 2, dim: 8, layers: 1 });
});
after(async () => {
  await stopWorker(worker);
});

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

async function expectFailure(
  models: { name: string; checkpoint: string }[],
  pattern: RegExp,
  output = path.join(dir, 'out', `${uniq('o')}.safetensors`),
) {
  const cfg = writeYaml(path.join(dir, `${uniq('c')}.yaml`), { method: 'ties', base: ck.base, models, output });
  const r = await runCli(['run', cfg, '--wait'], env);
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
  assert.match(lastLine(r.stderr), /^mergeflow: /);
  assert.match(lastLine(r.stderr), pattern);
  assert.equal(
    await storeFor(output).stat(output.startsWith('s3://') ? output : fileUri(output)),
    null,
    'no output object',
  );
  assert.ok(!fs.existsSync(output.replace(/\.safetensors$/, '.manifest.json')), 'no manifest');
}

test('a truncated checkpoint', async () => {
  const p = path.join(dir, 'truncated.safetensors');
  const full = fs.readFileSync(new URL(ck.models[0].checkpoint));
  fs.writeFileSync(p, full.subarray(0, full.length - 100));
  await expectFailure([{ name: 'a', checkpoint: p }], /truncated\.safetensors: .*the file is truncated/);
});

test('a header lying about offsets', async () => {
  const p = path.join(dir, 'lying.safetensors');
  const b = fs.readFileSync(new URL(ck.models[0].checkpoint));
  const n = Number(b.readBigUInt64LE(0));
  const h = b
    .subarray(8, 8 + n)
    .toString()
    .replace('"data_offsets":[0,', '"data_offsets":[8,');
  fs.writeFileSync(p, Buffer.concat([b.subarray(0, 8), Buffer.from(h), b.subarray(8 + n)]));
  await expectFailure([{ name: 'a', checkpoint: p }], /lying\.safetensors: tensor '[^']+'/);
});

test('a shape mismatch between models', async () => {
  const p = path.join(dir, 'shape.safetensors');
  await writeTensors(fileUri(p), [
    { name: 'layers.0.weight', dtype: 'F32', shape: [4, 16], data: fromFloat32(new Float32Array(64), 'F32') },
  ]);
  await expectFailure(
    [{ name: 'odd', checkpoint: p }],
    /model 'odd' (tensor 'layers\.0\.weight' has shape \[4,16\]|\(.*\) has no tensor 'embed\.weight')/,
  );
});

test('a dtype mismatch (integer where the base has float)', async () => {
  const p = path.join(dir, 'dtype.safetensors');
  const src = await (await import('../core/safetensors')).Checkpoint.open(ck.base);
  await writeTensors(
    fileUri(p),
    await Promise.all(
      src.tensors.map(async (t) => ({
        name: t.name,
        dtype: t.name === 'layers.0.bias' ? ('I32' as const) : t.dtype,
        shape: t.shape,
        data: await src.readBytes(t.name),
      })),
    ),
  );
  await expectFailure(
    [{ name: 'ints', checkpoint: p }],
    /model 'ints' tensor 'layers\.0\.bias' is I32 but the base is F32/,
  );
});

test('a missing tensor', async () => {
  const p = path.join(dir, 'missing.safetensors');
  const src = await (await import('../core/safetensors')).Checkpoint.open(ck.base);
  const kept = src.tensors.filter((t) => t.name !== 'layers.0.weight');
  await writeTensors(
    fileUri(p),
    await Promise.all(kept.map(async (t) => ({ ...t, data: await src.readBytes(t.name) }))),
  );
  await expectFailure(
    [{ name: 'short', checkpoint: p }],
    /model 'short' \(.*missing\.safetensors\) has no tensor 'layers\.0\.weight'/,
  );
});

test('a missing S3 object', async () => {
  const key = `${s3Prefix('missing')}/nope.safetensors`;
  await expectFailure(
    [{ name: 'ghost', checkpoint: key }],
    /nope\.safetensors: checkpoint not found/,
    `${s3Prefix('missing-out')}/out.safetensors`,
  );
});

test('an invalid config: every problem as path + expectation, exit 2, nothing started', async () => {
  const cfg = writeYaml(path.join(dir, 'invalid.yaml'), {
    method: 'tiez',
    base: 'http://example/x',
    models: [{ name: 'a b', checkpoint: ck.models[0].checkpoint }],
    output: path.join(dir, 'never.safetensors'),
    shards: 0,
  });
  const r = await runCli(['run', cfg, '--wait'], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid\.yaml: invalid config/);
  assert.match(
    r.stderr,
    /- method: expected one of weight_average \| task_arithmetic \| ties \| adamerging \| frank_wolfe, got 'tiez'/,
  );
  assert.match(r.stderr, /- base: expected file:\/\/, s3:\/\/ or a plain path/);
  assert.match(r.stderr, /- models\.0\.name: letters, digits/);
  assert.match(r.stderr, /- shards: /);
  const bad = await runCli(
    [
      'run',
      cfg,
      '--set',
      'method=ties',
      '--set',
      'parameters.keep=1.5',
      '--set',
      'base=' + ck.base,
      '--set',
      'models.0.name=a',
      '--set',
      'shards=2',
    ],
    env,
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /- parameters\.keep: /);
  const yaml = path.join(dir, 'broken.yaml');
  fs.writeFileSync(yaml, 'method: [unclosed');
  const y = await runCli(['run', yaml], env);
  assert.equal(y.code, 2);
  assert.match(y.stderr, /broken\.yaml: invalid config\n\s+- not valid YAML/);
  assert.ok(!fs.existsSync(path.join(dir, 'never.safetensors')));
});

test('Temporal down: one line naming the address and what to do', async () => {
  const cfg = writeYaml(path.join(dir, 'ok.yaml'), {
    method: 'task_arithmetic',
    base: ck.base,
    models: ck.models,
    output: path.join(dir, 'x.safetensors'),
  });
  const r = await runCli(['run', cfg], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  assert.equal(r.code, 1);
  assert.match(
    lastLine(r.stderr),
    /^mergeflow: cannot reach Temporal at 127\.0\.0\.1:1 .*'mergeflow stack up' or set TEMPORAL_ADDRESS$/,
  );
});
