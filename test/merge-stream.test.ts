/**
 * Streaming merges: tensors larger than a chunk are merged in element chunks with the same bytes as one
 * whole-tensor merge, each input is read once, and the manifest's input digests come from those reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { Checkpoint, DType, fromFloat32, numel, toFloat32, writeTensors } from '../core/safetensors';
import { runLocalMerge } from '../core/pipeline/local';
import { planMerge, splitShards } from '../core/pipeline/plan';
import { writeCoefficients } from '../core/pipeline/coefficients';
import { mergeShard } from '../core/pipeline/merge_shard';
import { planWindows, ShardStream } from '../core/pipeline/shard_stream';
import { addScaledTaskVector, applyDelta } from '../core/merge/task_vectors';
import { filePath, readJson } from '../core/store';
import { fileUri, tmpDir } from './helpers/env';
import { listedMergeConfig, METHOD_CASES } from './helpers/configs';

const SHAPES: Record<string, number[]> = { emb: [300, 211], ln: [211], ids: [50], w2: [211, 97] };
const DTYPES: DType[] = ['F32', 'BF16', 'F16', 'F32'];
/** 4 inputs × 16 K elements × 8 bytes: chunks of 16 K elements, so 'emb' (63 300) takes four. */
const SMALL_BUDGET = String(4 * 16384 * 8);

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

/** A base (F32) and three models in F32, BF16 and F16, with an integer tensor the merge copies from the base. */
async function inputs(label: string): Promise<{ dir: string; uris: string[] }> {
  const dir = tmpDir(label);
  const uris: string[] = [];
  for (let k = 0; k < 4; k++) {
    const dtype = DTYPES[k];
    const uri = fileUri(path.join(dir, k === 0 ? 'base.safetensors' : `m${k}.safetensors`));
    await writeTensors(
      uri,
      Object.entries(SHAPES).map(([name, shape], i) =>
        name === 'ids'
          ? { name, dtype: 'I64' as DType, shape, data: new Uint8Array(new BigInt64Array(50).fill(7n).buffer) }
          : { name, dtype, shape, data: fromFloat32(values(numel(shape), 10 * k + i), dtype) },
      ),
    );
    uris.push(uri);
  }
  return { dir, uris };
}

async function merge(dir: string, uris: string[], method: string, parameters: object, out: string, budget?: string) {
  const cfg = listedMergeConfig(dir, uris, method, parameters, out);
  if (budget) process.env.MERGEFLOW_STREAM_BUDGET = budget;
  // every merge here hashes what it reads (no digests from an earlier merge of the same inputs)
  process.env.MERGEFLOW_DIGEST_CACHE = 'off';
  try {
    return await runLocalMerge(cfg);
  } finally {
    delete process.env.MERGEFLOW_STREAM_BUDGET;
    delete process.env.MERGEFLOW_DIGEST_CACHE;
  }
}

test('tensors merged in element chunks equal whole-tensor merges byte for byte, for every method', async () => {
  const { dir, uris } = await inputs('stream-chunks');
  for (const [method, parameters] of METHOD_CASES) {
    const whole = await merge(dir, uris, method, parameters, `${method}-whole.safetensors`);
    const chunked = await merge(dir, uris, method, parameters, `${method}-chunked.safetensors`, SMALL_BUDGET);
    assert.equal(chunked.output.sha256, whole.output.sha256, `${method} ${JSON.stringify(parameters)}`);
    if (method === 'ties') assert.deepEqual(chunked.global, whole.global);
  }
});

test('Task Arithmetic in chunks equals the float32 reference formula over whole tensors', async () => {
  const { dir, uris } = await inputs('stream-ta');
  const r = await merge(dir, uris, 'task_arithmetic', { scaling: 0.3 }, 'ta.safetensors', SMALL_BUDGET);
  const cks = await Promise.all(uris.map((u) => Checkpoint.open(u)));
  const out = await Checkpoint.open(r.output.uri);
  for (const name of ['emb', 'ln', 'w2']) {
    const base = await cks[0].readFloat32(name);
    const delta = new Float32Array(base.length);
    for (const m of cks.slice(1)) addScaledTaskVector(delta, await m.readFloat32(name), base);
    const want = fromFloat32(applyDelta(base, delta, 0.3), 'F32');
    assert.ok(Buffer.from(await out.readBytes(name)).equals(Buffer.from(want)), name);
  }
  assert.ok(Buffer.from(await out.readBytes('ids')).equals(Buffer.from(await cks[0].readBytes('ids'))));
});

test('a stream reads each input once, decodes every dtype, and hashes exactly the bytes it hands out', async () => {
  const { uris } = await inputs('stream-reads');
  const [base, ...models] = await Promise.all(uris.map((u) => Checkpoint.open(u)));
  const stream = new ShardStream(base, models, base.tensors, { budget: 4 * 16384 * 8 });
  // an independent BLAKE3 (hash-wasm's; the stream's hashing thread uses the native engine where it loads)
  const hashes = await Promise.all(uris.map(() => createBLAKE3()));
  let expectedBytes = 0;
  try {
    for (const t of base.tensors) {
      if (t.dtype === 'I64') {
        for await (const b of stream.baseBytes(t)) hashes[0].update(b);
        expectedBytes += t.end - t.begin;
        continue;
      }
      const got = [base, ...models].map(() => new Float32Array(numel(t.shape)));
      let chunks = 0;
      for await (const c of stream.chunks(t)) {
        [c.base, ...c.models].forEach((v, i) => got[i].set(v, c.start));
        chunks++;
      }
      assert.equal(chunks, Math.ceil(numel(t.shape) / stream.chunk), t.name);
      for (const [i, ck] of [base, ...models].entries()) {
        const bytes = await ck.readBytes(t.name);
        hashes[i].update(bytes);
        expectedBytes += bytes.byteLength;
        assert.deepEqual(got[i], toFloat32(bytes, ck.info(t.name).dtype), `${t.name} of input ${i}`);
      }
    }
    // digests come from the hashing thread, which ends when the stream is closed
    assert.deepEqual(
      (await stream.digests()).map((d) => d[0]),
      hashes.map((h) => h.digest('hex')),
    );
  } finally {
    await stream.close();
  }
  // every byte handed out was read once, nothing twice; the models' integer tensor lies between float ones, so
  // it may be read along with them
  const dataBytes = [base, ...models].reduce((a, ck) => a + ck.files[0].size - ck.files[0].header.dataStart, 0);
  assert.equal(expectedBytes, dataBytes - 3 * 400);
  assert.ok(stream.bytesRead >= expectedBytes && stream.bytesRead <= dataBytes, `read ${stream.bytesRead} bytes`);
});

test("the manifest's input digests come from the merge's reads and change when an input's tensor bytes do", async () => {
  const { dir, uris } = await inputs('stream-digest');
  const r1 = await merge(dir, uris, 'weight_average', {}, 'wa.safetensors', SMALL_BUDGET);
  const r2 = await merge(dir, uris, 'weight_average', {}, 'wa2.safetensors');
  type M = { inputs: { base: { sha256: string; bytes: number }[]; models: Record<string, { sha256: string }[]> } };
  const m1 = (await readJson(r1.manifestUri, (w) => new Error(w))) as M;
  const m2 = (await readJson(r2.manifestUri, (w) => new Error(w))) as M;
  assert.deepEqual(m2.inputs, m1.inputs, 'independent of the chunk size');
  process.env.MERGEFLOW_HASH = 'wasm';
  try {
    const rw = await merge(dir, uris, 'weight_average', {}, 'wa-wasm.safetensors');
    const mw = (await readJson(rw.manifestUri, (w) => new Error(w))) as M;
    assert.deepEqual(mw.inputs, m1.inputs, 'the same with the WebAssembly BLAKE3');
  } finally {
    delete process.env.MERGEFLOW_HASH;
  }

  // the base's digest, recomputed by hand: BLAKE3 per shard of its tensor bytes in order, then combined
  const base = await Checkpoint.open(uris[0]);
  const top = createHash('sha256').update('mergeflow shard-blake3 v2\n');
  for (const s of splitShards(base.tensors, 2)) {
    const h = await createBLAKE3();
    for (const t of base.tensors.slice(s.first, s.first + s.count)) h.update(await base.readBytes(t.name));
    top.update(`${h.digest('hex')}\n`);
  }
  assert.equal(m1.inputs.base[0].sha256, top.digest('hex'));
  assert.equal(m1.inputs.base[0].bytes, fs.statSync(filePath(uris[0])).size);

  // flip one byte of model m2's last tensor: only m2's digest changes
  const m2file = filePath(uris[2]);
  const buf = fs.readFileSync(m2file);
  buf[buf.length - 1] ^= 1;
  fs.writeFileSync(m2file, buf);
  const r3 = await merge(dir, uris, 'weight_average', {}, 'wa3.safetensors');
  const m3 = (await readJson(r3.manifestUri, (w) => new Error(w))) as M;
  assert.equal(m3.inputs.base[0].sha256, m1.inputs.base[0].sha256);
  assert.equal(m3.inputs.models.m1[0].sha256, m1.inputs.models.m1[0].sha256);
  assert.notEqual(m3.inputs.models.m2[0].sha256, m1.inputs.models.m2[0].sha256);
  assert.notEqual(r3.output.sha256, r1.output.sha256);
});

test('reads are planned as windows of consecutive spans, each at most a buffer, gaps inside a window read through', () => {
  const spans = [
    { file: 0, offset: 100, length: 40 },
    { file: 0, offset: 140, length: 40 }, // follows: same window
    { file: 0, offset: 190, length: 10 }, // a 10-byte gap, still within 100 bytes of the window's start
    { file: 0, offset: 200, length: 40 }, // would make the window 140 bytes: a new one
    { file: 1, offset: 0, length: 20 }, // another file: a new one
    { file: 1, offset: 0 + 20, length: 20 },
    { file: 0, offset: 0, length: 30 }, // back in the first file, behind: a new one
  ];
  assert.deepEqual(planWindows(spans, 100), [
    { file: 0, offset: 100, length: 100 },
    { file: 0, offset: 200, length: 40 },
    { file: 1, offset: 0, length: 40 },
    { file: 0, offset: 0, length: 30 },
  ]);
  assert.throws(() => planWindows([{ file: 0, offset: 0, length: 101 }], 100), /exceeds the read buffer/);
});

test('a bad MERGEFLOW_STREAM_BUDGET is refused with a message naming it', async () => {
  const { dir, uris } = await inputs('stream-budget');
  await assert.rejects(
    merge(dir, uris, 'weight_average', {}, 'x.safetensors', 'lots'),
    /MERGEFLOW_STREAM_BUDGET='lots' is not a positive whole number of bytes/,
  );
});

test('a shard reports progress within a tensor that takes many chunks (heartbeats keep coming)', async () => {
  const { dir, uris } = await inputs('stream-progress');
  const cfg = validateConfig(
    {
      method: 'task_arithmetic',
      base: uris[0],
      models: uris.slice(1).map((u, k) => ({ name: `m${k + 1}`, checkpoint: u })),
      output: path.join(dir, 'p.safetensors'),
      shards: 1,
    },
    'test',
  );
  const plan = await planMerge(cfg, 'progress');
  const table = await writeCoefficients(plan, {});
  const seen: { done: number; note?: string }[] = [];
  process.env.MERGEFLOW_STREAM_BUDGET = SMALL_BUDGET;
  try {
    await mergeShard(plan, 0, {}, table, (done, _total, note) => void seen.push({ done, note }));
  } finally {
    delete process.env.MERGEFLOW_STREAM_BUDGET;
  }
  const within = seen.filter((p) => p.note === 'emb' && !Number.isInteger(p.done));
  assert.equal(within.length, 3, 'emb takes four chunks: three reports before it is done');
  assert.deepEqual(
    seen.map((p) => p.done),
    [...seen.map((p) => p.done)].sort((a, b) => a - b),
    'progress only moves forward',
  );
});
