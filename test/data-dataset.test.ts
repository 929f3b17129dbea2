import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Batch, checkImageSize, Dataset, openDataset, prepUriFor, writeDataset } from '../core/data/dataset';
import { mulberry32 } from '../core/data/rng';
import { writeTensors } from '../core/safetensors/writer';
import { putObject, storeFor, Store } from '../core/store';

const tmpDirs: string[] = [];
after(async () => {
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

async function tmpUri(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mf-data-'));
  tmpDirs.push(dir);
  return pathToFileURL(dir).href;
}

function randomU8(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * 256);
  return a;
}

async function collect(ds: Dataset, opts: Parameters<Dataset['batches']>[0]): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(opts)) out.push(b);
  return out;
}

function allIndices(bs: Batch[]): number[] {
  return bs.flatMap((b) => [...b.indices]);
}

test('U8 dataset round trip: labels, shape, preprocessing against a plain reference', async () => {
  const root = await tmpUri();
  const [n, c, h, w] = [37, 3, 5, 4];
  const inputs = randomU8(n * c * h * w, 1);
  const labels = Array.from({ length: n }, (_, i) => (i * 7) % 5);
  const mean = [0.1, 0.5, 0.9];
  const std = [0.2, 0.25, 0.5];
  const uri = `${root}/u8/train.safetensors`;
  const res = await writeDataset(uri, {
    inputs,
    shape: [n, c, h, w],
    labels,
    prep: { mean, std, classes: 5, task: 'toy' },
  });
  assert.equal(res.jsonUri, `${root}/u8/train.json`);
  assert.equal(prepUriFor(uri), res.jsonUri);
  const json = JSON.parse(await fs.readFile(new URL(res.jsonUri!), 'utf8'));
  assert.deepEqual(json, { mean, std, size: [h, w], classes: 5, task: 'toy' });

  const ds = await openDataset(uri);
  assert.equal(ds.n, n);
  assert.deepEqual(ds.shape, [n, c, h, w]);
  assert.equal(ds.dtype, 'U8');
  assert.equal(ds.hasLabels, true);
  assert.equal(ds.classes, 5);
  assert.deepEqual(ds.prep, { mean, std, size: [h, w], classes: 5, task: 'toy' });
  checkImageSize(ds, [3, 5, 4]);

  const batches = await collect(ds, { batchSize: 10 });
  assert.deepEqual(
    batches.map((b) => b.indices.length),
    [10, 10, 10, 7],
  );
  assert.deepEqual(
    allIndices(batches),
    Array.from({ length: n }, (_, i) => i),
  );
  const per = c * h * w;
  for (const b of batches) {
    assert.deepEqual(b.shape, [b.indices.length, c, h, w]);
    for (let i = 0; i < b.indices.length; i++) {
      const row = b.indices[i];
      assert.equal(b.labels![i], labels[row]);
      for (let k = 0; k < per; k++) {
        const ch = Math.floor(k / (h * w));
        const ref = (inputs[row * per + k] / 255 - mean[ch]) / std[ch];
        assert.ok(
          Math.abs(b.inputs[i * per + k] - ref) < 1e-6,
          `row ${row} value ${k}: ${b.inputs[i * per + k]} vs ${ref}`,
        );
      }
    }
  }
});

test('U8 without a JSON is scaled to [0, 1]; I32 labels are read', async () => {
  const root = await tmpUri();
  const inputs = randomU8(6 * 1 * 2 * 2, 2);
  const uri = `${root}/plain.safetensors`;
  await writeDataset(uri, { inputs, shape: [6, 1, 2, 2], labels: [0, 1, 2, 3, 4, 5], labelDtype: 'I32' });
  const ds = await openDataset(uri);
  assert.equal(ds.prepFile, undefined);
  assert.deepEqual(ds.prep, { mean: [0], std: [1], size: [2, 2] });
  const [b] = await collect(ds, { batchSize: 100 });
  assert.deepEqual([...b.labels!], [0, 1, 2, 3, 4, 5]);
  for (let k = 0; k < inputs.length; k++) assert.ok(Math.abs(b.inputs[k] - inputs[k] / 255) < 1e-7);
});

test('F32 dataset: no JSON -> values as stored; with a JSON -> (x - mean) / std', async () => {
  const root = await tmpUri();
  const [n, c, h, w] = [9, 2, 3, 3];
  const r = mulberry32(3);
  const inputs = Float32Array.from({ length: n * c * h * w }, () => r() * 4 - 2);
  const raw = `${root}/f32raw.safetensors`;
  const res = await writeDataset(raw, { inputs, shape: [n, c, h, w] });
  assert.equal(res.jsonUri, undefined);
  const ds = await openDataset(raw);
  assert.equal(ds.dtype, 'F32');
  assert.equal(ds.hasLabels, false);
  assert.equal(ds.prep, undefined);
  const bs = await collect(ds, { batchSize: 4 });
  assert.equal(bs[0].labels, undefined);
  const got = new Float32Array(bs.flatMap((b) => [...b.inputs]));
  assert.deepEqual(got, inputs);

  const norm = `${root}/f32norm.safetensors`;
  await writeDataset(norm, { inputs, shape: [n, c, h, w], prep: { mean: [0.5, -1], std: [2, 0.5] } });
  const ds2 = await openDataset(norm);
  const [b] = await collect(ds2, { batchSize: n });
  const per = c * h * w;
  for (let k = 0; k < inputs.length; k++) {
    const ch = Math.floor((k % per) / (h * w));
    const ref = (inputs[k] - [0.5, -1][ch]) / [2, 0.5][ch];
    assert.ok(Math.abs(b.inputs[k] - ref) < 1e-6);
  }

  // rewriting without prep removes the stale JSON, so the floats are read as stored again
  await writeDataset(norm, { inputs, shape: [n, c, h, w] });
  await assert.rejects(fs.stat(new URL(prepUriFor(norm))));
  const [b3] = await collect(await openDataset(norm), { batchSize: n });
  assert.deepEqual(b3.inputs, inputs);
});

test('shuffling: same seed -> same batches, other seed -> other order; each row once; limit and dropLast', async () => {
  const root = await tmpUri();
  const n = 100;
  const inputs = randomU8(n * 4, 4);
  const labels = Array.from({ length: n }, (_, i) => i % 10);
  const uri = `${root}/shuf.safetensors`;
  await writeDataset(uri, { inputs, shape: [n, 1, 2, 2], labels, prep: { mean: [0.5], std: [0.5], classes: 10 } });
  const ds = await openDataset(uri);

  const a = await collect(ds, { batchSize: 16, seed: 7 });
  const b = await collect(await openDataset(uri), { batchSize: 16, seed: 7 });
  const c = await collect(ds, { batchSize: 16, seed: 8 });
  assert.deepEqual(allIndices(a), allIndices(b));
  assert.deepEqual(
    a.map((x) => [...x.inputs]),
    b.map((x) => [...x.inputs]),
  );
  assert.notDeepEqual(allIndices(a), allIndices(c));
  assert.notDeepEqual(
    allIndices(a),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.deepEqual(
    [...allIndices(a)].sort((x, y) => x - y),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.deepEqual(
    [...allIndices(c)].sort((x, y) => x - y),
    Array.from({ length: n }, (_, i) => i),
  );
  for (const batch of a) {
    for (let i = 0; i < batch.indices.length; i++) assert.equal(batch.labels![i], labels[batch.indices[i]]);
  }
  assert.deepEqual(allIndices(a), [...ds.order({ seed: 7 })]);

  // seed with shuffle: false keeps file order; limit takes the first rows of the order
  assert.deepEqual(
    allIndices(await collect(ds, { batchSize: 30, seed: 7, shuffle: false })),
    Array.from({ length: n }, (_, i) => i),
  );
  const lim = await collect(ds, { batchSize: 16, seed: 7, limit: 40 });
  assert.deepEqual(allIndices(lim), allIndices(a).slice(0, 40));
  assert.deepEqual(
    lim.map((x) => x.indices.length),
    [16, 16, 8],
  );
  const dl = await collect(ds, { batchSize: 16, seed: 7, limit: 40, dropLast: true });
  assert.deepEqual(
    dl.map((x) => x.indices.length),
    [16, 16],
  );
  assert.equal(ds.numBatches({ batchSize: 16 }), 7);
  assert.equal((await collect(ds, { batchSize: 16, limit: 0 })).length, 0);
});

test('streaming: a small batch reads only its rows, by byte range, never the whole file', async () => {
  const root = await tmpUri();
  const n = 2000;
  const per = 28 * 28;
  const inputs = randomU8(n * per, 5);
  const uri = `${root}/big.safetensors`;
  const written = await writeDataset(uri, {
    inputs,
    shape: [n, 1, 28, 28],
    labels: Array.from({ length: n }, (_, i) => i % 10),
  });

  // count the bytes read through an injected store
  const base = storeFor(uri);
  let readBytes = 0;
  const counting: Store = Object.assign(Object.create(base) as Store, {
    read: async (u: string, off: number, len: number) => {
      readBytes += len;
      return base.read(u, off, len);
    },
  });
  const ds = await openDataset(uri, { store: counting, maxGapBytes: 0 });
  const afterOpen = readBytes;
  assert.ok(afterOpen < 64 * 1024 + n * 8 + 1, `open read ${afterOpen} bytes`);

  const it = ds.batches({ batchSize: 4, seed: 11 });
  const first = await it.next();
  await it.return(undefined);
  assert.equal(first.done, false);
  const b = first.value as Batch;
  // rows are exact: compare to the source bytes
  for (let i = 0; i < 4; i++) {
    for (let k = 0; k < per; k += 97)
      assert.ok(Math.abs(b.inputs[i * per + k] - inputs[b.indices[i] * per + k] / 255) < 1e-7);
  }
  // at most two batches were fetched (the first and the prefetched second): 8 rows
  assert.ok(ds.stats.bytes <= 8 * per, `read ${ds.stats.bytes} bytes of inputs`);
  assert.ok(ds.stats.reads <= 8);
  assert.ok(readBytes - afterOpen <= 8 * per);
  assert.ok(readBytes < written.bytes / 10);

  // contiguous rows are one read
  const ds2 = await openDataset(uri);
  await ds2.readRows([100, 101, 102, 103, 104]);
  assert.deepEqual(ds2.stats, { reads: 1, bytes: 5 * per });
  // nearby rows are merged within maxGapBytes; far ones are not
  const ds3 = await openDataset(uri, { maxGapBytes: 2 * per });
  const r3 = await ds3.readRows([500, 10, 12, 1500, 502]);
  assert.deepEqual([...r3.indices], [500, 10, 12, 1500, 502]);
  assert.deepEqual(ds3.stats, { reads: 3, bytes: 3 * per + 3 * per + per });
  assert.ok(Math.abs(r3.inputs[per * 3] - inputs[1500 * per] / 255) < 1e-7);

  // cacheBytes: the inputs are read once, whole, then served from memory
  const ds4 = await openDataset(uri, { cacheBytes: 64 * 1024 * 1024 });
  await collect(ds4, { batchSize: 64, seed: 1 });
  await collect(ds4, { batchSize: 64, seed: 2 });
  assert.deepEqual(ds4.stats, { reads: 1, bytes: n * per });
});

test('bad datasets give one-line errors naming the file', async () => {
  const root = await tmpUri();
  const noInputs = `${root}/noinputs.safetensors`;
  await writeTensors(noInputs, [{ name: 'x', dtype: 'U8', shape: [2, 1, 2, 2], data: new Uint8Array(8) }]);
  await assert.rejects(openDataset(noInputs), (e: Error) => {
    assert.match(e.message, /noinputs\.safetensors: no 'inputs' tensor \(found: x\)/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });

  const rank3 = `${root}/rank3.safetensors`;
  await writeTensors(rank3, [{ name: 'inputs', dtype: 'U8', shape: [2, 2, 2], data: new Uint8Array(8) }]);
  await assert.rejects(
    openDataset(rank3),
    /rank3\.safetensors: 'inputs' has shape \[2, 2, 2\] \(rank 3\); expected rank 4/,
  );

  const f16 = `${root}/f16.safetensors`;
  await writeTensors(f16, [{ name: 'inputs', dtype: 'F16', shape: [1, 1, 2, 2], data: new Uint8Array(8) }]);
  await assert.rejects(openDataset(f16), /f16\.safetensors: 'inputs' is F16; only U8/);

  const badLen = `${root}/badlen.safetensors`;
  await writeTensors(badLen, [
    { name: 'inputs', dtype: 'U8', shape: [3, 1, 2, 2], data: new Uint8Array(12) },
    { name: 'labels', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
  ]);
  await assert.rejects(openDataset(badLen), /badlen\.safetensors: 2 labels for 3 inputs/);

  const badLabelDtype = `${root}/badlabeldtype.safetensors`;
  await writeTensors(badLabelDtype, [
    { name: 'inputs', dtype: 'U8', shape: [2, 1, 2, 2], data: new Uint8Array(8) },
    { name: 'labels', dtype: 'F32', shape: [2], data: new Uint8Array(8) },
  ]);
  await assert.rejects(openDataset(badLabelDtype), /badlabeldtype\.safetensors: 'labels' is F32; expected I64 or I32/);

  // labels out of range of the JSON's classes (written behind writeDataset's back)
  const outOfRange = `${root}/oor.safetensors`;
  await writeDataset(outOfRange, { inputs: new Uint8Array(12), shape: [3, 1, 2, 2], labels: [0, 4, 1] });
  await putObject(
    prepUriFor(outOfRange),
    Buffer.from(JSON.stringify({ mean: [0], std: [1], size: [2, 2], classes: 3 })),
  );
  await assert.rejects(openDataset(outOfRange), /oor\.safetensors: label 4 at row 1 is outside \[0, 3\)/);
  // negative labels are refused even without classes
  const neg = `${root}/neg.safetensors`;
  const negBytes = new Uint8Array(16);
  new DataView(negBytes.buffer).setBigInt64(8, -1n, true);
  await writeTensors(neg, [
    { name: 'inputs', dtype: 'U8', shape: [2, 1, 2, 2], data: new Uint8Array(8) },
    { name: 'labels', dtype: 'I64', shape: [2], data: negBytes },
  ]);
  await assert.rejects(openDataset(neg), /neg\.safetensors: label -1 at row 1 is outside/);

  // writeDataset checks the same rules before writing anything
  const wr = `${root}/w.safetensors`;
  await assert.rejects(
    writeDataset(wr, {
      inputs: new Uint8Array(12),
      shape: [3, 1, 2, 2],
      labels: [0, 1, 5],
      prep: { mean: [0], std: [1], classes: 5 },
    }),
    /w\.safetensors: label 5 at row 2 is outside \[0, 5\)/,
  );
  await assert.rejects(
    writeDataset(wr, { inputs: new Uint8Array(12), shape: [3, 1, 2, 2], labels: [0, 1] }),
    /w\.safetensors: 2 labels for 3 inputs/,
  );
  await assert.rejects(
    writeDataset(wr, { inputs: new Uint8Array(12), shape: [3, 4] }),
    /w\.safetensors: inputs shape \[3, 4\] must be rank 4/,
  );
  await assert.rejects(
    writeDataset(wr, { inputs: new Uint8Array(11), shape: [3, 1, 2, 2] }),
    /inputs hold 11 values but shape \[3, 1, 2, 2\] needs 12/,
  );
  await assert.rejects(
    writeDataset(`${root}/w.bin`, { inputs: new Uint8Array(12), shape: [3, 1, 2, 2] }),
    /w\.bin: a dataset must be a \.safetensors object/,
  );
  await assert.rejects(
    writeDataset(wr, { inputs: new Uint8Array(12), shape: [3, 1, 2, 2], prep: { mean: [0, 0], std: [1] } }),
    /"mean" has 2 values but the images have 1 channel/,
  );
  assert.equal(await storeFor(wr).stat(wr), null);

  // bad JSON beside a good dataset
  const good = `${root}/good.safetensors`;
  await writeDataset(good, { inputs: new Uint8Array(12), shape: [3, 1, 2, 2] });
  const js = prepUriFor(good);
  await putObject(js, Buffer.from('{"mean": [0], "std": [0], "size": [2, 2]}'));
  await assert.rejects(openDataset(good), /good\.json: "std" values must be > 0/);
  await putObject(js, Buffer.from('{"mean": [0], "std": [1], "size": [28, 28]}'));
  await assert.rejects(openDataset(good), /good\.json: "size" says 28x28 but the images are 2x2/);
  await putObject(js, Buffer.from('{"mean": [0], '));
  await assert.rejects(openDataset(good), /good\.json: not valid JSON/);
  await putObject(js, Buffer.from('{"mean": [0], "std": [1], "size": [2, 2]}'));
  const ds = await openDataset(good);

  // image size a caller expects
  assert.throws(
    () => checkImageSize(ds, [3, 32, 32]),
    /good\.safetensors: images are 1x2x2 \(CxHxW\) but the model expects 3x32x32/,
  );
  // batch options and rows
  await assert.rejects(collect(ds, { batchSize: 0 }), /batchSize must be a positive integer/);
  await assert.rejects(ds.readRows([3]), /good\.safetensors: row 3 is out of range \[0, 3\)/);
  // missing dataset
  await assert.rejects(openDataset(`${root}/missing.safetensors`), /missing\.safetensors: dataset not found/);
});
