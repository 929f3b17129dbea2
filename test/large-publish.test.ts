/**
 * Publishing at scale, against the real S3 server and files: the output is composed from the shard parts
 * without reading them back through the worker, a publish retried after it committed succeeds without redoing
 * it, and a folder output gets the base folder's tokenizer and generation files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeConfigSchema } from '../core/config/schema';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { Committed, joinUri, putObject, storeFor, Store } from '../core/store';
import type { ShardPart } from '../core/pipeline/merge_shard';
import { buildHeader } from '../core/safetensors';
import { coreSteps, outputDType, partsDigest, planMerge } from '../core/pipeline';
import { Checkpoint } from '../core/safetensors';
import { MIN_PART } from '../core/store/s3_parts';
import { composesDuring } from './helpers/compose_spy';
import { fileUri, s3Prefix, tmpDir, uniq } from './helpers/env';

/** Counts the bytes `store` reads from URIs under `prefix` while `fn` runs (the store itself does the reads). */
async function bytesReadUnder<T>(store: Store, prefix: string, fn: () => Promise<T>): Promise<[T, number]> {
  const read = store.read;
  let n = 0;
  store.read = async (uri, offset, length, expect) => {
    if (uri.startsWith(prefix)) n += length;
    return read.call(store, uri, offset, length, expect);
  };
  try {
    return [await fn(), n];
  } finally {
    store.read = read;
  }
}

/** Plans a Task Arithmetic merge and merges its shards; returns what publish needs. */
async function mergedParts(root: string, output: string) {
  const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 5, models: 2, dim: 1600, layers: 3 });
  const config = mergeConfigSchema.parse({
    method: 'task_arithmetic',
    base: ck.base,
    models: ck.models,
    output,
    shards: 3,
  });
  const steps = coreSteps();
  const plan = await planMerge(config, uniq('publish'));
  const coefficients = await steps.writeCoefficients(plan, {});
  const parts: ShardPart[] = [];
  for (const s of plan.shards) parts.push(await steps.mergeShard(plan, s.index, {}, coefficients));
  return { config, plan, parts, steps };
}

async function expectedBytes(plan: Awaited<ReturnType<typeof planMerge>>, parts: Committed[]): Promise<Buffer> {
  const base = await Checkpoint.open(plan.base.uri);
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
  const { bytes: header } = buildHeader(specs, { format: 'pt', mergeflow_method: plan.method });
  const bodies = await Promise.all(
    parts.map(async (p) => Buffer.from(await storeFor(p.uri).read(p.uri, p.offset ?? 0, p.bytes))),
  );
  return Buffer.concat([header, ...bodies]);
}

test('s3: publish copies the parts server-side (reads at most the 5 MiB part minimum per part) and gives the exact bytes', async () => {
  const root = s3Prefix('publish');
  const { config, plan, parts, steps } = await mergedParts(root, `${root}/out/merged.safetensors`);
  assert.ok(
    parts.every((p) => p.bytes > MIN_PART),
    'parts large enough to be copied',
  );
  const want = await expectedBytes(plan, parts);
  const store = storeFor(root);
  const [published, read] = await bytesReadUnder(store, plan.workPrefix, () => steps.publishMerge(plan, parts, config));
  const total = parts.reduce((a, p) => a + p.bytes, 0);
  // only the stretches that fill a part to S3's 5 MiB minimum go through the worker (here: after the header)
  assert.ok(
    read <= MIN_PART * parts.length && read < total / 2,
    `publish read ${read} of the parts' ${total} bytes back`,
  );
  const got = Buffer.from(await store.readAll(published.output.uri));
  assert.ok(got.equals(want), 'the output is the header followed by the parts');
  assert.equal(published.output.bytes, want.length);
  const manifest = JSON.parse(Buffer.from(await store.readAll(published.manifestUri)).toString());
  assert.equal(manifest.output.sha256, published.output.sha256);
  assert.equal(manifest.output.parts.length, parts.length + 1);
  for (const p of manifest.output.parts as { offset: number; bytes: number; sha256: string }[]) {
    const slice = got.subarray(p.offset, p.offset + p.bytes);
    assert.equal(require('node:crypto').createHash('sha256').update(slice).digest('hex'), p.sha256);
  }
  assert.deepEqual(await store.list(plan.workPrefix), [], 'work prefix cleared');
});

test('file: shards fill a staged output in place; publish writes the header, reads nothing back, copies nothing', async () => {
  const root = fileUri(tmpDir('publish-staged'));
  const { config, plan, parts, steps } = await mergedParts(root, `${root}/out/merged.safetensors`);
  const stage = `${plan.workPrefix}staged/merged.safetensors`;
  const header = (await expectedHeader(plan)).bytes;
  let at = header.byteLength;
  for (const p of parts) {
    assert.deepEqual([p.uri, p.offset], [stage, at], 'each shard is the next range of the staged file');
    at += p.bytes;
  }
  assert.equal((await storeFor(root).list(plan.workPrefix)).filter((u) => u.includes('/parts/')).length, 0);
  const want = await expectedBytes(plan, parts);
  const store = storeFor(root);
  const [published, read] = await bytesReadUnder(store, plan.workPrefix, () => steps.publishMerge(plan, parts, config));
  assert.equal(read, 0, 'publish read nothing of the shards back');
  const got = Buffer.from(await store.readAll(published.output.uri));
  assert.ok(got.equals(want), 'the output is the header followed by the shard ranges');
  assert.equal(published.output.sha256, partsDigest(header, parts));
  assert.deepEqual(await store.list(plan.workPrefix), [], 'work prefix cleared, the output stays');
});

for (const kind of ['file', 's3'] as const) {
  test(`${kind}: a publish retried after it committed succeeds without redoing the work`, async () => {
    const root = kind === 's3' ? s3Prefix('republish') : fileUri(tmpDir('republish'));
    const { config, plan, parts, steps } = await mergedParts(root, `${root}/out/merged.safetensors`);
    const first = await steps.publishMerge(plan, parts, config);
    // the first attempt committed (its parts are gone), but its result was lost: Temporal retries the activity
    const again = await composesDuring(root, () => steps.publishMerge(plan, parts, config));
    assert.deepEqual(again.result, first);
    assert.equal(again.composed, 0, 'the output is not written again');
    assert.equal(first.output.sha256, partsDigest((await expectedHeader(plan)).bytes, parts));
  });
}

async function expectedHeader(plan: Awaited<ReturnType<typeof planMerge>>) {
  const base = await Checkpoint.open(plan.base.uri);
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
  return buildHeader(specs, { format: 'pt', mergeflow_method: plan.method });
}

for (const kind of ['file', 's3'] as const) {
  test(`${kind}: a folder output gets the base folder tokenizer and generation files`, async () => {
    const root = kind === 's3' ? s3Prefix('sidefiles') : fileUri(tmpDir('sidefiles'));
    const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 2, models: 2, dim: 16, layers: 1 });
    const baseDir = joinUri(root, 'base');
    await putObject(joinUri(baseDir, 'model.safetensors'), await storeFor(ck.base).readAll(ck.base));
    const side = {
      'config.json': '{"model_type":"x"}',
      'tokenizer.json': '{"version":"1.0"}',
      'tokenizer_config.json': '{}',
      'special_tokens_map.json': '{}',
      'generation_config.json': '{"do_sample":false}',
      'vocab.json': '{"a":0}',
      'merges.txt': '#version: 0.2\n',
    };
    for (const [n, text] of Object.entries(side)) await putObject(joinUri(baseDir, n), Buffer.from(text));
    const out = joinUri(root, 'out');
    const config = mergeConfigSchema.parse({ method: 'weight_average', base: baseDir, models: ck.models, output: out });
    const { runLocalMerge } = await import('../core/pipeline');
    const r = await runLocalMerge(config, uniq('side'));
    const copied = async (n: string) => Buffer.from(await storeFor(out).readAll(joinUri(out, n))).toString('utf8');
    for (const [n, text] of Object.entries(side)) assert.equal(await copied(n), text, n);
    const manifest = JSON.parse(await copied('mergeflow.manifest.json'));
    assert.deepEqual([...manifest.files].sort(), ['model.safetensors', ...Object.keys(side)].sort());
    assert.equal(r.output.uri, joinUri(out, 'model.safetensors'));
  });
}
