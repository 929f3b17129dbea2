/**
 * Sharded outputs (max_shard_size), against the real local S3 server, files and (for S3) a real worker through
 * Temporal: the shard files and index hold the single file's tensors byte for byte, the manifest describes each
 * file, a retried publish redoes nothing, a folder holds one layout at a time, and a sharded output is read back
 * as the input of another merge and by `mergeflow predict`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { mergeConfigSchema, parseByteSize } from '../core/config';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { Checkpoint, SafetensorsFile } from '../core/safetensors';
import { basenameUri, joinUri, storeFor } from '../core/store';
import {
  alignShards,
  coreSteps,
  filesDigest,
  INDEX_FILE,
  Manifest,
  planMerge,
  runLocalMerge,
  ShardPart,
  splitOutputFiles,
  splitShards,
} from '../core/pipeline';
import { composesDuring } from './helpers/compose_spy';
import { fileUri, runCli, s3Prefix, startWorker, stopWorker, tmpDir, uniq, writeYaml } from './helpers/env';

const queue = uniq('shard');
const env = { MERGEFLOW_TASK_QUEUE: queue };
let worker: ChildProcess | undefined;

before(() => {
  worker = startWorker(queue);
});
after(async () => {
  if (worker) await stopWorker(worker);
});

/** Every tensor of a checkpoint: dtype, shape and raw bytes, in the checkpoint's order. */
async function tensorsOf(uri: string): Promise<{ name: string; dtype: string; shape: number[]; hex: string }[]> {
  const ck = await Checkpoint.open(uri);
  return Promise.all(
    ck.tensors.map(async (t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      hex: Buffer.from(await ck.readBytes(t.name)).toString('hex'),
    })),
  );
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function readText(uri: string): Promise<string> {
  return Buffer.from(await storeFor(uri).readAll(uri)).toString('utf8');
}

/** Names directly in a folder. */
async function namesIn(folder: string): Promise<string[]> {
  const all = await storeFor(folder).list(joinUri(folder, '/'));
  return all.filter((u) => u === joinUri(folder, basenameUri(u))).map(basenameUri);
}

const LIMIT = '20KB';

/**
 * The checks shared by the file and S3 cases: the folder holds M shard files, the index, the manifest; the index
 * is the Hugging Face layout; every file stays within the limit unless it holds one tensor; the tensors equal the
 * single file's; the manifest's digests match the stored bytes.
 */
async function checkSharded(folder: string, single: string, manifestUri: string): Promise<void> {
  const names = await namesIn(folder);
  const shards = names.filter((n) => n.startsWith('model-')).sort();
  assert.ok(shards.length >= 3, `several shard files: ${names}`);
  shards.forEach((n, i) =>
    assert.equal(n, `model-${String(i + 1).padStart(5, '0')}-of-0000${shards.length}.safetensors`),
  );
  assert.deepEqual(names.sort(), [...shards, 'mergeflow.manifest.json', INDEX_FILE].sort());

  const want = await tensorsOf(single);
  const got = await tensorsOf(folder);
  assert.deepEqual(got, want, "the shards hold the single file's tensors, in its order, byte for byte");

  const index = JSON.parse(await readText(joinUri(folder, INDEX_FILE)));
  const totalSize = want.reduce((a, t) => a + t.hex.length / 2, 0);
  assert.deepEqual(index.metadata, { total_size: totalSize });
  assert.deepEqual(
    Object.keys(index.weight_map),
    want.map((t) => t.name),
  );
  const limit = parseByteSize(LIMIT)!;
  for (const n of shards) {
    const f = await SafetensorsFile.open(joinUri(folder, n));
    const bytes = f.tensors.reduce((a, t) => a + (t.end - t.begin), 0);
    assert.ok(bytes <= limit || f.tensors.length === 1, `${n}: ${bytes} bytes in ${f.tensors.length} tensors`);
    for (const t of f.tensors) assert.equal(index.weight_map[t.name], n);
  }

  const manifest = JSON.parse(await readText(manifestUri)) as Manifest;
  const files = manifest.output.files!;
  assert.equal(manifest.output.uri, joinUri(folder, INDEX_FILE));
  assert.deepEqual(
    files.map((f) => basenameUri(f.uri)),
    [...shards, INDEX_FILE],
  );
  assert.equal(manifest.output.digest, 'sha256-files');
  assert.equal(manifest.output.sha256, filesDigest(files));
  assert.equal(
    manifest.output.bytes,
    files.reduce((a, f) => a + f.bytes, 0),
  );
  for (const f of files) {
    const body = await storeFor(f.uri).readAll(f.uri);
    assert.equal(body.byteLength, f.bytes, f.uri);
    const parts = (f as { parts?: { offset: number; bytes: number; sha256: string }[] }).parts;
    if (!parts) assert.equal(sha256(body), f.sha256, 'the index: its plain sha256');
    else for (const p of parts) assert.equal(sha256(body.subarray(p.offset, p.offset + p.bytes)), p.sha256);
  }
  assert.deepEqual(manifest.files, [...shards, INDEX_FILE]);
}

test('sizes: decimal and binary units and byte counts; 0, negatives, fractions of a byte and a bare B are refused', () => {
  assert.equal(parseByteSize('5GB'), 5e9);
  assert.equal(parseByteSize('500MB'), 5e8);
  assert.equal(parseByteSize('2GiB'), 2 * 2 ** 30);
  assert.equal(parseByteSize('1.5 kb'), 1500);
  assert.equal(parseByteSize(4096), 4096);
  assert.equal(parseByteSize('4096'), 4096);
  for (const bad of ['abc', 0, -1, '-5GB', 1.5, '1.5', '5B', '', '5 GB extra', null])
    assert.equal(parseByteSize(bad), undefined, String(bad));
});

test('files split greedily at tensor boundaries; a tensor above the limit gets its own file; shards cut at file starts', () => {
  const files = splitOutputFiles([40, 30, 100, 10, 10, 60], 79);
  assert.deepEqual(
    files.map((f) => [f.name, f.first, f.count, f.bytes]),
    [
      ['model-00001-of-00004.safetensors', 0, 2, 70],
      ['model-00002-of-00004.safetensors', 2, 1, 100],
      ['model-00003-of-00004.safetensors', 3, 2, 20],
      ['model-00004-of-00004.safetensors', 5, 1, 60],
    ],
  );
  assert.deepEqual(
    splitOutputFiles([40, 30, 10], 80).map((f) => f.name),
    ['model.safetensors'],
    'everything within the limit: one file',
  );
  const elements = [10, 10, 10, 10, 10, 10];
  const shards = splitShards(
    elements.map((n, i) => ({ name: `t${i}`, dtype: 'F32' as const, shape: [n], begin: 0, end: 0 })),
    2,
  );
  const aligned = alignShards(shards, files, elements);
  assert.deepEqual(
    aligned.map((s) => [s.index, s.first, s.count, s.elements]),
    [
      [0, 0, 2, 20],
      [1, 2, 1, 10],
      [2, 3, 2, 20],
      [3, 5, 1, 10],
    ],
  );
});

test('file: a Task Arithmetic merge with a small max_shard_size gives M files + index with the single file’s tensors; merged again as an input', async () => {
  const root = fileUri(tmpDir('sharded'));
  const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 4, models: 2, dim: 64, layers: 3 });
  const cfg = (output: string, over: Record<string, unknown> = {}) =>
    mergeConfigSchema.parse({ method: 'task_arithmetic', base: ck.base, models: ck.models, output, ...over });
  const single = await runLocalMerge(cfg(joinUri(root, 'single')), uniq('single'));
  const folder = joinUri(root, 'sharded');
  const sharded = await runLocalMerge(cfg(folder, { max_shard_size: LIMIT, shards: 2 }), uniq('sharded'));
  assert.equal(sharded.output.uri, joinUri(folder, INDEX_FILE));
  await checkSharded(folder, single.output.uri, sharded.manifestUri);
  assert.deepEqual(await namesIn(joinUri(root, '.mergeflow-work')), [], 'work cleared');

  // the sharded folder as the model of a later merge gives the bytes the single file gives
  const again = (model: string, out: string) =>
    runLocalMerge(cfg(joinUri(root, out), { models: [{ name: 'merged', checkpoint: model }] }), uniq('again'));
  const fromSingle = await again(single.output.uri, 'again-single');
  const fromSharded = await again(folder, 'again-sharded');
  assert.ok(
    Buffer.from(await storeFor(fromSingle.output.uri).readAll(fromSingle.output.uri)).equals(
      Buffer.from(await storeFor(fromSharded.output.uri).readAll(fromSharded.output.uri)),
    ),
  );
});

test('file: TIES, whose passes run over the re-cut shards, gives the same tensors sharded as in one file', async () => {
  const root = fileUri(tmpDir('sharded-ties'));
  const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 8, models: 3, dim: 64, layers: 3 });
  const cfg = (output: string, over: Record<string, unknown> = {}) =>
    mergeConfigSchema.parse({
      method: 'ties',
      base: ck.base,
      models: ck.models,
      parameters: { keep: 0.3 },
      output,
      ...over,
    });
  const single = await runLocalMerge(cfg(joinUri(root, 'single')), uniq('ties'));
  const sharded = await runLocalMerge(cfg(joinUri(root, 'sharded'), { max_shard_size: LIMIT }), uniq('ties'));
  assert.deepEqual(sharded.global, single.global, 'the same thresholds and majority sign');
  await checkSharded(joinUri(root, 'sharded'), single.output.uri, sharded.manifestUri);
});

test('s3: the same merge through Temporal gives the same tensors as shard files + index; results lists the files', async () => {
  const root = s3Prefix('sharded');
  const dir = tmpDir('sharded-s3');
  const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 4, models: 2, dim: 64, layers: 3 });
  const single = await runLocalMerge(
    mergeConfigSchema.parse({ method: 'task_arithmetic', base: ck.base, models: ck.models, output: `${root}/single` }),
    uniq('single'),
  );
  const folder = `${root}/sharded`;
  const cfgFile = writeYaml(path.join(dir, 'c.yaml'), {
    method: 'task_arithmetic',
    base: ck.base,
    models: ck.models,
    output: folder,
    max_shard_size: LIMIT,
  });
  const r = await runCli(['run', cfgFile, '--wait', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const run = JSON.parse(r.stdout);
  assert.equal(run.output, joinUri(folder, INDEX_FILE));
  await checkSharded(folder, single.output.uri, run.manifest);
  const manifest = JSON.parse(await readText(run.manifest)) as Manifest;
  assert.equal(run.sha256, manifest.output.sha256);
  assert.deepEqual(
    run.files.map((f: { uri: string }) => f.uri),
    manifest.output.files!.map((f) => f.uri),
  );
  assert.deepEqual(await storeFor(root).list(`${root}/.mergeflow-work/`), [], 'work cleared');
  const res = await runCli(['results', run.runId], env);
  assert.equal(res.code, 0, res.stderr);
  for (const f of manifest.output.files!)
    assert.ok(res.stdout.includes(`file      ${f.uri} `) && res.stdout.includes(f.sha256), res.stdout);
});

for (const kind of ['file', 's3'] as const) {
  test(`${kind}: a sharded publish retried after it committed redoes nothing`, async () => {
    const root = kind === 's3' ? s3Prefix('reshard') : fileUri(tmpDir('reshard'));
    const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 6, models: 2, dim: 32, layers: 2 });
    const config = mergeConfigSchema.parse({
      method: 'task_arithmetic',
      base: ck.base,
      models: ck.models,
      output: joinUri(root, 'out'),
      max_shard_size: '4KB',
    });
    const steps = coreSteps();
    const plan = await planMerge(config, uniq('reshard'));
    assert.ok(plan.outputFiles && plan.outputFiles.length > 1, 'sharded');
    const coefficients = await steps.writeCoefficients(plan, {});
    const parts: ShardPart[] = [];
    for (const s of plan.shards) parts.push(await steps.mergeShard(plan, s.index, {}, coefficients));
    const first = await steps.publishMerge(plan, parts, config);
    const again = await composesDuring(root, () => steps.publishMerge(plan, parts, config));
    assert.deepEqual(again.result, first);
    assert.equal(again.composed, 0, 'no file is written again');
    assert.equal(first.files?.length, plan.outputFiles!.length + 1);
  });
}

for (const kind of ['file', 's3'] as const) {
  test(`${kind}: a folder holds one layout: sharded over single removes model.safetensors, single over sharded the index and shards`, async () => {
    const root = kind === 's3' ? s3Prefix('relayout') : fileUri(tmpDir('relayout'));
    const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 7, models: 2, dim: 32, layers: 2 });
    const out = joinUri(root, 'out');
    const merge = (over: Record<string, unknown>) =>
      runLocalMerge(
        mergeConfigSchema.parse({ method: 'weight_average', base: ck.base, models: ck.models, output: out, ...over }),
        uniq('relayout'),
      );
    await merge({});
    const single = await tensorsOf(joinUri(out, 'model.safetensors'));
    await merge({ max_shard_size: '4KB' });
    const shardFiles = async () => (await namesIn(out)).filter((n) => n.startsWith('model-')).sort();
    const many = await shardFiles();
    assert.ok(!(await namesIn(out)).includes('model.safetensors') && (await namesIn(out)).includes(INDEX_FILE));
    await merge({ max_shard_size: '8KB' });
    const fewer = await shardFiles();
    assert.ok(fewer.length > 1 && fewer.length < many.length, `${many} then ${fewer}`);
    assert.ok(
      fewer.every((n) => n.endsWith(`-of-0000${fewer.length}.safetensors`)),
      `only the new count's files: ${fewer}`,
    );
    assert.deepEqual(await tensorsOf(out), single);
    await merge({});
    assert.deepEqual((await namesIn(out)).sort(), ['mergeflow.manifest.json', 'model.safetensors']);
    assert.deepEqual(await tensorsOf(out), single);
  });
}

test('file: a publish interrupted over an earlier output of the same file count leaves no index naming a mix of old and new files', async () => {
  const root = fileUri(tmpDir('reshard-mix'));
  const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 9, models: 2, dim: 32, layers: 2 });
  const out = joinUri(root, 'out');
  const cfg = (method: string, output: string, over: Record<string, unknown> = {}) =>
    mergeConfigSchema.parse({ method, base: ck.base, models: ck.models, output, ...over });
  await runLocalMerge(cfg('weight_average', out, { max_shard_size: '4KB' }), uniq('old'));
  const before = await namesIn(out);
  // a different merge into the same folder, same limit: the same file names
  const config = cfg('task_arithmetic', out, { max_shard_size: '4KB' });
  const steps = coreSteps();
  const plan = await planMerge(config, uniq('new'));
  assert.deepEqual(
    plan.outputFiles!.map((f) => f.name),
    before.filter((n) => n.startsWith('model-')).sort(),
  );
  const coefficients = await steps.writeCoefficients(plan, {});
  const parts: ShardPart[] = [];
  for (const s of plan.shards) parts.push(await steps.mergeShard(plan, s.index, {}, coefficients));
  await assert.rejects(
    composesDuring(out, () => steps.publishMerge(plan, parts, config), 2),
    /the worker died here/,
  );
  assert.ok(!(await namesIn(out)).includes(INDEX_FILE), 'the old index is gone before any file is rewritten');
  await assert.rejects(Checkpoint.open(out), /not a checkpoint/);
  await steps.publishMerge(plan, parts, config);
  const single = await runLocalMerge(cfg('task_arithmetic', joinUri(root, 'single')), uniq('single'));
  assert.deepEqual(await tensorsOf(out), await tensorsOf(single.output.uri), 'the retry publishes the new merge');
});

test('mergeflow predict reads a sharded folder: the same embeddings and logits as from the single file', async () => {
  const dir = tmpDir('shard-predict');
  const ada = await writeAdaFixture(fileUri(path.join(dir, 'ada')));
  const models = ada.tasks.map((t) => ({ name: t.name, checkpoint: t.model }));
  const merge = (name: string, over: Record<string, unknown> = {}) =>
    runLocalMerge(
      mergeConfigSchema.parse({
        method: 'task_arithmetic',
        base: ada.pretrained,
        models,
        output: fileUri(path.join(dir, name)),
        ...over,
      }),
      uniq(name),
    );
  await merge('single');
  await merge('sharded', { max_shard_size: '2KiB' });
  assert.ok(
    fs.existsSync(path.join(dir, 'sharded', INDEX_FILE)) && fs.existsSync(path.join(dir, 'sharded', 'config.json')),
  );
  const predictions: Awaited<ReturnType<typeof tensorsOf>>[] = [];
  for (const name of ['single', 'sharded']) {
    const out = path.join(dir, `${name}.predictions.safetensors`);
    const r = await runCli(
      ['predict', path.join(dir, name), '--inputs', ada.tasks[0].data, '--out', out, '--head', ada.tasks[0].head],
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    predictions.push(await tensorsOf(fileUri(out)));
  }
  assert.deepEqual(
    predictions[0].map((t) => t.name),
    ['embeddings', 'logits'],
  );
  assert.deepEqual(predictions[1], predictions[0], 'the same embeddings and logits, byte for byte');
});
