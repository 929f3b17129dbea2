/**
 * Safetensors hardening: tensor names that are JavaScript object keys (`__proto__`) survive writing, reading
 * and a merge; headers with invalid UTF-8 are refused; an index cannot point outside its checkpoint's folder;
 * non-finite weights are refused naming the tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Checkpoint,
  checkShardName,
  fromFloat32,
  parseHeader,
  SafetensorsError,
  writeTensors,
} from '../core/safetensors';
import { putObject } from '../core/store';
import { runLocalMerge } from '../core/pipeline/local';
import { validateConfig } from '../core/config/load';
import { fileUri, tmpDir } from './helpers/env';

const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'ünïcødé.weight'];

async function write(file: string, values: (name: string) => number[]): Promise<string> {
  const uri = fileUri(file);
  await writeTensors(
    uri,
    NAMES.map((name) => ({
      name,
      dtype: 'F32' as const,
      shape: [2],
      data: fromFloat32(Float32Array.from(values(name)), 'F32'),
    })),
  );
  return uri;
}

test("tensors named '__proto__', 'constructor' … round-trip through the writer and the reader", async () => {
  const dir = tmpDir('proto');
  const uri = await write(path.join(dir, 'm.safetensors'), (n) => [NAMES.indexOf(n), -NAMES.indexOf(n)]);
  const header = fs.readFileSync(new URL(uri)).subarray(8).toString('utf8');
  assert.match(header, /"__proto__":\{"dtype":"F32"/, 'the name is in the header JSON');
  const ck = await Checkpoint.open(uri);
  assert.deepEqual(
    ck.tensors.map((t) => t.name),
    NAMES,
  );
  for (const [i, n] of NAMES.entries()) assert.deepEqual(Array.from(await ck.readFloat32(n)), [i, -i]);
});

test("a merge keeps a tensor named '__proto__' with the merged values", async () => {
  const dir = tmpDir('proto-merge');
  const base = await write(path.join(dir, 'base.safetensors'), () => [1, 1]);
  const a = await write(path.join(dir, 'a.safetensors'), () => [3, 1]);
  const b = await write(path.join(dir, 'b.safetensors'), () => [1, 5]);
  const cfg = validateConfig(
    {
      method: 'weight_average',
      base,
      models: [
        { name: 'a', checkpoint: a },
        { name: 'b', checkpoint: b },
      ],
      output: fileUri(path.join(dir, 'out.safetensors')),
    },
    'test',
  );
  const r = await runLocalMerge(cfg, 'proto');
  const out = await Checkpoint.open(r.output.uri);
  assert.deepEqual(
    out.tensors.map((t) => t.name),
    NAMES,
  );
  for (const n of NAMES) assert.deepEqual(Array.from(await out.readFloat32(n)), [2, 3], n);
});

test('a header with invalid UTF-8 is refused; valid multi-byte names are read', () => {
  const ok = Buffer.from(JSON.stringify({ é: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }));
  assert.equal(parseHeader(ok, 'ok.safetensors', 8 + ok.length + 1).tensors[0].name, 'é');
  for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80] /* a UTF-16 surrogate */, [0xc0, 0xaf] /* overlong '/' */]) {
    const h = Buffer.concat([
      Buffer.from('{"a'),
      Buffer.from(bad),
      Buffer.from('":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'),
    ]);
    assert.throws(
      () => parseHeader(h, 'bad.safetensors', 8 + h.length + 1),
      (e: Error) =>
        e instanceof SafetensorsError &&
        e.message === 'bad.safetensors: header is not valid UTF-8; the file is corrupt or not safetensors',
    );
  }
});

test('shard names in an index must stay inside the checkpoint folder', async () => {
  for (const ok of ['model-00001-of-00002.safetensors', 'weights/part-1.safetensors', 'a..b.safetensors'])
    assert.doesNotThrow(() => checkShardName('idx', ok), ok);
  const bad: unknown[] = [
    '../base.safetensors',
    'sub/../../x.safetensors',
    './x.safetensors',
    '/etc/x.safetensors',
    '\\\\server\\x.safetensors',
    'sub\\..\\x.safetensors',
    's3://other-bucket/x.safetensors',
    'file:///tmp/x.safetensors',
    '%2e%2e/x.safetensors',
    'a//b.safetensors',
    'model.bin',
    '',
    42,
  ];
  for (const s of bad) assert.throws(() => checkShardName('idx', s), SafetensorsError, String(s));
  // and through a real folder: an index pointing at the parent folder's file is refused before reading it
  const dir = tmpDir('escape');
  const inner = path.join(dir, 'ck');
  fs.mkdirSync(inner);
  await writeTensors(fileUri(path.join(dir, 'secret.safetensors')), [
    { name: 'x', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
  ]);
  await putObject(
    fileUri(path.join(inner, 'model.safetensors.index.json')),
    Buffer.from(JSON.stringify({ weight_map: { x: '../secret.safetensors' } })),
  );
  await assert.rejects(
    Checkpoint.open(fileUri(inner)),
    /shard "\.\.\/secret\.safetensors" is not a \.safetensors file inside/,
  );
});

test('non-finite weights are refused naming the file, the tensor and the first bad element', async () => {
  const dir = tmpDir('nan');
  const uri = fileUri(path.join(dir, 'm.safetensors'));
  await writeTensors(uri, [
    { name: 'ok', dtype: 'F32', shape: [2], data: fromFloat32(Float32Array.from([1, 2]), 'F32') },
    { name: 'w', dtype: 'BF16', shape: [4], data: fromFloat32(Float32Array.from([0, Infinity, NaN, 1]), 'BF16') },
  ]);
  const ck = await Checkpoint.open(uri);
  assert.deepEqual(Array.from(await ck.readFloat32('ok')), [1, 2]);
  await assert.rejects(ck.readFloat32('w'), {
    name: 'SafetensorsError',
    message: `${uri}: tensor 'w' holds 2 non-finite values (first: Infinity at element 1); repair or drop this checkpoint`,
  });
});
