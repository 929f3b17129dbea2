import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Checkpoint,
  DType,
  SafetensorsFile,
  bf16ToFloat,
  floatToBf16,
  floatToHalf,
  fromFloat32,
  halfToFloat,
  toFloat32,
  writeTensors,
} from '../core/safetensors';
import { putObject } from '../core/store';
import { fileUri, REPO, tmpDir } from './helpers/env';

const FIX = path.join(REPO, 'test', 'fixtures', 'safetensors');

function bytesOf(dtype: DType, values: number[]): Uint8Array {
  switch (dtype) {
    case 'I64':
      return new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
    case 'I32':
      return new Uint8Array(Int32Array.from(values).buffer);
    case 'U8':
      return Uint8Array.from(values);
    default:
      return fromFloat32(Float32Array.from(values), dtype);
  }
}

test('round trip of every dtype through a file', async () => {
  const dir = tmpDir('st');
  const uri = fileUri(path.join(dir, 'all.safetensors'));
  const values = [0, 1, -2.5, 3.140625, 65504, -0.000061035156];
  const tensors = (['F32', 'F16', 'BF16', 'F64'] as DType[]).map((d) => ({
    name: d.toLowerCase(),
    dtype: d,
    shape: [2, 3],
    data: bytesOf(d, values),
  }));
  tensors.push({ name: 'i64', dtype: 'I64', shape: [3], data: bytesOf('I64', [-(2 ** 40), 0, 7]) });
  tensors.push({ name: 'i32', dtype: 'I32', shape: [3], data: bytesOf('I32', [-5, 0, 2 ** 30]) });
  tensors.push({ name: 'u8', dtype: 'U8', shape: [4], data: bytesOf('U8', [0, 1, 128, 255]) });
  await writeTensors(uri, tensors, { format: 'pt' });
  const f = await SafetensorsFile.open(uri);
  assert.deepEqual(f.header.metadata, { format: 'pt' });
  for (const t of tensors) {
    assert.deepEqual(f.info(t.name).shape, t.shape);
    assert.equal(f.info(t.name).dtype, t.dtype);
    assert.deepEqual(Buffer.from(await f.readBytes(t.name)), Buffer.from(t.data), t.name);
  }
  for (const d of ['F32', 'F16', 'BF16', 'F64']) {
    const got = Array.from(await f.readFloat32(d.toLowerCase()));
    const want =
      d === 'BF16'
        ? values.map((v) => bf16ToFloat(floatToBf16(v)))
        : d === 'F16'
          ? values.map((v) => halfToFloat(floatToHalf(v)))
          : values.map(Math.fround);
    assert.deepEqual(got, want, d);
  }
  // header is 8-byte aligned, as the reference writer does
  assert.equal(f.header.dataStart % 8, 0);
});

test('half and bfloat16 conversions round to nearest even', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(65520), 0x7c00); // rounds up to inf
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.ok(Number.isNaN(bf16ToFloat(floatToBf16(NaN))));
});

test('reads a file written by the Python safetensors package', async () => {
  const f = await SafetensorsFile.open(fileUri(path.join(FIX, 'python_written.safetensors')));
  const want = JSON.parse(fs.readFileSync(path.join(FIX, 'python_written.json'), 'utf8')) as Record<
    string,
    { dtype: string; shape: number[]; values: number[] }
  >;
  const map: Record<string, DType> = {
    float32: 'F32',
    float16: 'F16',
    float64: 'F64',
    int64: 'I64',
    int32: 'I32',
    uint8: 'U8',
  };
  for (const [name, w] of Object.entries(want)) {
    const info = f.info(name);
    assert.equal(info.dtype, map[w.dtype], name);
    assert.deepEqual(info.shape, w.shape, name);
    const bytes = await f.readBytes(name);
    let got: number[];
    if (info.dtype === 'I64') got = Array.from(new BigInt64Array(new Uint8Array(bytes).buffer), Number);
    else if (info.dtype === 'I32') got = Array.from(new Int32Array(new Uint8Array(bytes).buffer));
    else if (info.dtype === 'U8') got = Array.from(bytes);
    else if (info.dtype === 'F64') got = Array.from(new Float64Array(new Uint8Array(bytes).buffer));
    else got = Array.from(toFloat32(bytes, info.dtype));
    assert.deepEqual(got, w.values, name);
  }
});

test('files written by mergeflow load in the Python safetensors package', async () => {
  const dir = tmpDir('stpy');
  const out = path.join(dir, 'ours.safetensors');
  const json = path.join(dir, 'ours.json');
  const f32 = Float32Array.from([0.5, -1.25, 3, 1e-8]);
  const h = Float32Array.from([1, 0.333251953125, -2]);
  await writeTensors(fileUri(out), [
    { name: 'a', dtype: 'F32', shape: [2, 2], data: fromFloat32(f32, 'F32') },
    { name: 'b', dtype: 'F16', shape: [3], data: fromFloat32(h, 'F16') },
    { name: 'c', dtype: 'I64', shape: [2], data: bytesOf('I64', [-3, 2 ** 35]) },
    { name: 'd', dtype: 'U8', shape: [3], data: bytesOf('U8', [1, 2, 250]) },
    { name: 'e', dtype: 'I32', shape: [0], data: new Uint8Array(0) },
  ]);
  fs.writeFileSync(
    json,
    JSON.stringify({
      a: { dtype: 'float32', shape: [2, 2], values: Array.from(f32) },
      b: { dtype: 'float16', shape: [3], values: Array.from(h) },
      c: { dtype: 'int64', shape: [2], values: [-3, 2 ** 35] },
      d: { dtype: 'uint8', shape: [3], values: [1, 2, 250] },
      e: { dtype: 'int32', shape: [0], values: [] },
    }),
  );
  const py = execFileSync(
    'python3',
    [path.join(REPO, 'scripts', 'golden', 'safetensors_golden.py'), 'check', out, json],
    { encoding: 'utf8' },
  );
  assert.match(py, /^ok 5/);
});

test('sharded Hugging Face checkpoints are read through the index', async () => {
  const dir = tmpDir('shard');
  const one = Float32Array.from([1, 2, 3]);
  const two = Float32Array.from([4, 5]);
  await writeTensors(fileUri(path.join(dir, 'model-00001-of-00002.safetensors')), [
    { name: 'x', dtype: 'F32', shape: [3], data: fromFloat32(one, 'F32') },
  ]);
  await writeTensors(fileUri(path.join(dir, 'model-00002-of-00002.safetensors')), [
    { name: 'y', dtype: 'BF16', shape: [2], data: fromFloat32(two, 'BF16') },
  ]);
  await putObject(
    fileUri(path.join(dir, 'model.safetensors.index.json')),
    Buffer.from(
      JSON.stringify({
        metadata: {},
        weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' },
      }),
    ),
  );
  const ck = await Checkpoint.open(fileUri(dir));
  assert.deepEqual(
    ck.tensors.map((t) => t.name),
    ['x', 'y'],
  );
  assert.deepEqual(Array.from(await ck.readFloat32('y')), [4, 5]);
  assert.equal(ck.files.length, 2);
});

async function corrupt(label: string, mutate: (b: Buffer) => Buffer): Promise<string> {
  const dir = tmpDir(label);
  const uri = fileUri(path.join(dir, 'm.safetensors'));
  await writeTensors(uri, [
    { name: 'w', dtype: 'F32', shape: [4, 4], data: new Uint8Array(64) },
    { name: 'b', dtype: 'F32', shape: [4], data: new Uint8Array(16) },
  ]);
  const p = path.join(dir, 'm.safetensors');
  fs.writeFileSync(p, mutate(fs.readFileSync(p)));
  return uri;
}

function setHeader(
  b: Buffer,
  edit: (h: Record<string, { data_offsets: number[]; shape: number[]; dtype: string }>) => void,
): Buffer {
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString());
  edit(h);
  const json = Buffer.from(JSON.stringify(h).padEnd(n, ' '));
  assert.equal(json.length, n, 'test edit must keep the header length');
  return Buffer.concat([b.subarray(0, 8), json, b.subarray(8 + n)]);
}

test('corrupt files give clear errors naming the file and tensor', async () => {
  const truncated = await corrupt('trunc', (b) => b.subarray(0, b.length - 10));
  await assert.rejects(
    SafetensorsFile.open(truncated),
    /m\.safetensors: tensor '\w' ends at data byte \d+ but the data section holds \d+ bytes; the file is truncated/,
  );
  const tiny = await corrupt('tiny', (b) => b.subarray(0, 5));
  await assert.rejects(SafetensorsFile.open(tiny), /too short to be safetensors/);
  const lying = await corrupt('lie', (b) => setHeader(b, (h) => (h.w.data_offsets = [0, 60])));
  await assert.rejects(
    SafetensorsFile.open(lying),
    /tensor 'w': shape \[4, 4\] x F32 needs 64 bytes but data_offsets span 60/,
  );
  const overlap = await corrupt('overlap', (b) => setHeader(b, (h) => (h.b.data_offsets = [48, 64])));
  await assert.rejects(SafetensorsFile.open(overlap), /tensor '\w' bytes \[\d+, \d+\) overlap the previous tensor/);
  const badDtype = await corrupt('dtype', (b) => setHeader(b, (h) => (h.w.dtype = 'Q4')));
  await assert.rejects(SafetensorsFile.open(badDtype), /tensor 'w': unsupported dtype "Q4"/);
  const badJson = await corrupt('json', (b) => {
    b[10] = 0x7b;
    b[11] = 0x7b;
    return b;
  });
  await assert.rejects(SafetensorsFile.open(badJson), /header is not valid JSON/);
  const huge = await corrupt('huge', (b) => {
    b.writeBigUInt64LE(10n ** 12n, 0);
    return b;
  });
  await assert.rejects(SafetensorsFile.open(huge), /header length 1000000000000 is larger than/);
});
