/**
 * AdaMerging bad input through the CLI and the real stack: each is refused before any optimiser step runs, with
 * a non-zero exit and one line that names the thing and what to do; nothing is written under the output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { writeDataset } from '../core/data/dataset';
import { Checkpoint, writeTensors } from '../core/safetensors';
import { joinUri, putObject, storeFor } from '../core/store';
import { writeHead } from '../core/suite/io';
import { AdaFixture, CLASSES, writeAdaFixture } from '../core/synthetic_adamerging';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, writeYaml } from './helpers/env';

const queue = uniq('ada-bad');
const env = { MERGEFLOW_TASK_QUEUE: queue };
const prefix = s3Prefix('ada-bad');
let worker: ChildProcess;
let dir: string;
let fx: AdaFixture;

before(async () => {
  worker = startWorker(queue);
  dir = tmpDir('ada-bad');
  fx = await writeAdaFixture(`${prefix}/in`);
});
after(async () => {
  await stopWorker(worker);
});

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

async function run(doc: Record<string, unknown>) {
  const output = `${prefix}/out/${uniq('o')}`;
  const cfg = writeYaml(path.join(dir, `${uniq('c')}.yaml`), {
    method: 'adamerging',
    base: fx.pretrained,
    output,
    parameters: { steps: 4, batch_size: 4, steps_per_epoch: 2 },
    ...doc,
  });
  const r = await runCli(['run', cfg, '--wait'], env);
  assert.notEqual(r.code, 0, `exit code; stderr: ${r.stderr}`);
  // nothing was written: no optimiser state, no model
  assert.deepEqual(await storeFor(output).list(`${output}/`), [], 'nothing under the output');
  return r;
}

async function expectRunFailure(tasks: AdaFixture['tasks'], pattern: RegExp): Promise<string> {
  const r = await run({ tasks });
  assert.equal(r.code, 1, r.stderr);
  const line = lastLine(r.stderr);
  assert.match(line, /^mergeflow: /);
  assert.match(line, pattern);
  return line;
}

test('a head whose width differs from the encoder projection', async () => {
  const head = await writeHead(
    `${prefix}/in/head-wide.safetensors`,
    { weight: new Float32Array(CLASSES * 6), classes: CLASSES, dim: 6, logitScale: 0 },
    'wide',
    Array.from({ length: CLASSES }, (_, i) => `c${i}`),
  );
  await expectRunFailure(
    [fx.tasks[0], { ...fx.tasks[1], head }],
    /task 'task1': head .*head-wide\.safetensors is for 6-dim embeddings .* projects to 4; use the head trained on this encoder$/,
  );
});

test('data of the wrong image size', async () => {
  const data = `${prefix}/in/big.safetensors`;
  await writeDataset(data, { inputs: new Uint8Array(3 * 16 * 16), shape: [3, 1, 16, 16] });
  await expectRunFailure(
    [{ ...fx.tasks[0], data }, fx.tasks[1]],
    /task 'task0': data .*big\.safetensors holds 1x16x16 images .* takes 1x8x8; resize the data$/,
  );
});

test('models with different tensor sets', async () => {
  const src = await Checkpoint.open(fx.tasks[1].model);
  const model = `${prefix}/in/extra`;
  const tensors = await Promise.all(
    src.tensors.map(async (t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: await src.readBytes(t.name) })),
  );
  tensors.push({ name: 'extra.bias', dtype: 'F32', shape: [2], data: new Uint8Array(8) });
  await writeTensors(joinUri(model, 'model.safetensors'), tensors);
  const cfgUri = joinUri(fx.tasks[1].model, 'config.json');
  await putObject(joinUri(model, 'config.json'), await storeFor(cfgUri).readAll(cfgUri));
  await expectRunFailure(
    [fx.tasks[0], { ...fx.tasks[1], model }],
    /task 'task1': model .* has tensor 'extra\.bias' that the base lacks; the models must share the base's tensor set$/,
  );
});

test('a task without data, a parameter of the wrong type, an unknown key: refused before anything starts', async () => {
  const { data: _data, ...noData } = fx.tasks[1];
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ tasks: [fx.tasks[0], noData] }, /^ {2}- tasks\.1\.data: /],
    [{ tasks: fx.tasks, parameters: { steps: 'many' } }, /^ {2}- parameters\.steps: expected number, received string$/],
    [
      { tasks: fx.tasks, parameters: { stepz: 4 } },
      /^ {2}- parameters\.stepz: unknown key; expected only granularity, variant, steps, /,
    ],
  ];
  for (const [doc, pattern] of cases) {
    const r = await run(doc);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0], /^mergeflow: .*\.yaml: invalid config$/);
    assert.equal(lines.length, 2, `one problem line: ${r.stderr}`);
    assert.match(lines[1], pattern);
  }
});
