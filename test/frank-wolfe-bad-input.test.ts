/**
 * Frank-Wolfe bad input through the CLI and the real stack: an incompatible candidate (named, with the first
 * difference; skipped with a warning under skip_incompatible), an empty pool prefix, a target without proxy
 * data, a pool holding the same checkpoint twice. Each is refused with a non-zero exit and one line naming it,
 * before any iteration; nothing is written under the output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { Checkpoint, writeTensors } from '../core/safetensors';
import { joinUri, putObject, readJson, storeFor } from '../core/store';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import { runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, writeYaml } from './helpers/env';

const queue = uniq('fw-bad');
const env = { MERGEFLOW_TASK_QUEUE: queue };
const prefix = s3Prefix('fw-bad');
let worker: ChildProcess;
let dir: string;
let fx: AdaFixture;
let narrow: string;

before(async () => {
  worker = startWorker(queue);
  dir = tmpDir('fw-bad');
  fx = await writeAdaFixture(`${prefix}/in`, { tasks: 3, labeled: true });
  // task2's model with one tensor cut short: incompatible with the base
  const src = await Checkpoint.open(fx.tasks[2].model);
  const cut = src.tensors.find((t) => t.shape.length === 1)!;
  const tensors = await Promise.all(
    src.tensors.map(async (t) => {
      const data = await src.readBytes(t.name);
      return t.name === cut.name
        ? { name: t.name, dtype: t.dtype, shape: [t.shape[0] - 1], data: data.subarray(0, data.length - 4) }
        : { name: t.name, dtype: t.dtype, shape: t.shape, data };
    }),
  );
  narrow = `${prefix}/pool/narrow`;
  await writeTensors(joinUri(narrow, 'model.safetensors'), tensors);
  const cfg = joinUri(fx.tasks[2].model, 'config.json');
  await putObject(joinUri(narrow, 'config.json'), await storeFor(cfg).readAll(cfg));
  for (const t of fx.tasks.slice(0, 2)) {
    const ck = await Checkpoint.open(t.model);
    await putObject(
      joinUri(`${prefix}/pool`, t.name, 'model.safetensors'),
      await storeFor(ck.uri).readAll(ck.files[0].uri),
    );
  }
});
after(async () => {
  await stopWorker(worker);
});

const targets = () => fx.tasks.slice(0, 2).map((t) => ({ name: t.name, head: t.head, proxy: t.data, data: t.data }));

function configFile(doc: Record<string, unknown>, output: string): string {
  return writeYaml(path.join(dir, `${uniq('c')}.yaml`), {
    method: 'frank_wolfe',
    base: fx.pretrained,
    targets: targets(),
    output,
    parameters: { iterations: 1, proxy_samples: 4 },
    ...doc,
  });
}

async function refused(doc: Record<string, unknown>, code: number, pattern: RegExp): Promise<void> {
  const output = `${prefix}/out/${uniq('o')}`;
  const r = await runCli(['run', configFile(doc, output), '--wait'], env);
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.ok(
    lines.some((l) => pattern.test(l)),
    `${pattern} in:\n${r.stderr}`,
  );
  assert.deepEqual(await storeFor(output).list(`${output}/`), [], 'nothing under the output');
}

test('an incompatible candidate is refused, named with the first difference', async () => {
  await refused(
    {
      pool: [
        { name: 'ok', checkpoint: fx.tasks[0].model },
        { name: 'narrow', checkpoint: narrow },
      ],
    },
    1,
    /^mergeflow: .*candidate 'narrow' \(.*narrow\) tensor '.*' is \[\d+\], the base's \[\d+\]; every candidate must match the base's tensors \(or set skip_incompatible: true\)$/,
  );
});

test('an empty pool prefix is refused', async () => {
  await refused(
    { pool: { prefix: `${prefix}/nothing-here/` } },
    1,
    /^mergeflow: .*pool prefix .*\/nothing-here\/ holds no checkpoint .*; check the prefix or list the pool$/,
  );
});

test('a target without proxy data and a pool with the same checkpoint twice: refused before anything starts', async () => {
  const { proxy: _p, ...noProxy } = targets()[1];
  await refused(
    { pool: [{ name: 'a', checkpoint: fx.tasks[0].model }], targets: [targets()[0], noProxy] },
    2,
    /^ {2}- targets\.1\.proxy: target 'task1' has no proxy data: the cross_entropy objective needs a labeled proxy set/,
  );
  await refused(
    {
      pool: [
        { name: 'a', checkpoint: fx.tasks[0].model },
        { name: 'b', checkpoint: `${fx.tasks[0].model}/model.safetensors` },
      ],
    },
    2,
    /^ {2}- pool\.1\.checkpoint: candidates 'a' and 'b' are the same checkpoint/,
  );
});

test(
  'skip_incompatible: a pool discovered under a prefix runs without the incompatible candidate, with a warning',
  {
    timeout: 300_000,
  },
  async () => {
    const output = `${prefix}/out/skip`;
    const cfg = configFile({ pool: { prefix: `${prefix}/pool/` }, skip_incompatible: true }, output);
    const r = await runCli(['run', cfg, '--wait', '--json'], env, 300_000);
    assert.equal(r.code, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { runId: string; status: string; manifest: string };
    assert.equal(run.status, 'completed');
    const manifest = (await readJson(run.manifest, (w) => new Error(w))) as {
      inputs: { pool: Record<string, unknown> };
      warnings: string[];
    };
    assert.deepEqual(Object.keys(manifest.inputs.pool), ['task0', 'task1'], 'discovered, sorted, narrow left out');
    assert.equal(manifest.warnings.length, 1);
    assert.match(manifest.warnings[0], /^candidate 'narrow' .* skipped \(skip_incompatible\)$/);
    const res = await runCli(['results', run.runId], env);
    assert.match(res.stdout, /^warning +candidate 'narrow' /m);
  },
);
