/** The store over file:// and the real S3 server: ranged reads, listing, atomic publishes, clear errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NotFoundError, joinUri, putObject, storeFor } from '../core/store';
import { S3Store, s3Client } from '../core/store/s3';
import { fileUri, s3Prefix, tmpDir } from './helpers/env';

const roots = (): [string, string][] => [
  ['file', fileUri(tmpDir('store'))],
  ['s3', s3Prefix('store')],
];

for (const [kind, root] of roots()) {
  test(`${kind}: write, stat, ranged read, list, delete`, async () => {
    const store = storeFor(root);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    const uri = joinUri(root, 'a', 'obj.bin');
    const c = await putObject(uri, data);
    assert.equal(c.bytes, 1000);
    assert.equal(c.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal((await store.stat(uri))?.size, 1000);
    assert.deepEqual(Buffer.from(await store.read(uri, 100, 50)), data.subarray(100, 150));
    await putObject(joinUri(root, 'a', 'b', 'second.bin'), Buffer.from('x'));
    assert.deepEqual(await store.list(joinUri(root, 'a') + '/'), [joinUri(root, 'a', 'b', 'second.bin'), uri]);
    await store.delete(uri);
    assert.equal(await store.stat(uri), null);
    await assert.rejects(store.read(uri, 0, 1), NotFoundError);
  });

  test(`${kind}: an aborted write leaves nothing under the final name`, async () => {
    const uri = joinUri(root, 'aborted.bin');
    const store = kind === 's3' ? new S3Store(s3Client(), 5 * 1024 * 1024) : storeFor(root);
    const w = await store.writer(uri);
    await w.write(Buffer.alloc(6 * 1024 * 1024, 1)); // past one part: a multipart upload is under way on S3
    assert.equal(await store.stat(uri), null, 'not visible before commit');
    await w.abort();
    assert.equal(await store.stat(uri), null);
    if (kind === 'file')
      assert.deepEqual(
        fs.readdirSync(path.dirname(new URL(uri).pathname)).filter((n) => n.startsWith('aborted')),
        [],
        'no temp file left',
      );
  });
}

test('file: compose copies ranges across its 16 MiB turns exactly; a missing segment leaves nothing behind', async () => {
  const root = fileUri(tmpDir('store-compose'));
  const store = storeFor(root);
  const MiB = 1024 * 1024;
  const a = Buffer.alloc(37 * MiB + 5);
  for (let i = 0; i < a.length; i += 4093) a[i] = (i >>> 12) & 255;
  const b = Buffer.from(Array.from({ length: 3 * MiB + 7 }, (_, i) => (i * 31) % 256));
  const ua = joinUri(root, 'a.bin');
  const ub = joinUri(root, 'b.bin');
  await putObject(ua, a);
  await putObject(ub, b);
  const head = Buffer.from('HEADER');
  const segments = [
    { uri: ua, offset: 3, length: a.length - 3 }, // three 16 MiB turns, the last one short
    { uri: ub, offset: 0, length: b.length },
    { uri: ua, offset: 16 * MiB - 1, length: 2 }, // back to the first file, across a turn's edge
  ];
  const seen: number[] = [];
  const out = joinUri(root, 'out', 'model.safetensors');
  const total = await store.compose(out, head, segments, { progress: (done) => void seen.push(done) });
  const want = Buffer.concat([head, a.subarray(3), b, a.subarray(16 * MiB - 1, 16 * MiB + 1)]);
  assert.equal(total, want.length);
  assert.ok(Buffer.from(await store.readAll(out)).equals(want), 'the composed bytes');
  assert.equal(seen[seen.length - 1], want.length);
  assert.ok(
    seen.every((v, i) => i === 0 || v > seen[i - 1]),
    'progress only grows',
  );

  const gone = joinUri(root, 'missing.bin');
  const out2 = joinUri(root, 'out2', 'model.safetensors');
  await assert.rejects(
    store.compose(out2, head, [
      { uri: ua, offset: 0, length: 20 * MiB },
      { uri: gone, offset: 0, length: 10 },
    ]),
    (e: Error) => e instanceof NotFoundError && e.message.includes(gone),
  );
  assert.deepEqual(await store.list(joinUri(root, 'out2') + '/'), [], 'no output and no temp file');
});

test('file: range writers fill a staged file in any order; publishing adds the head and links it, copying nothing', async () => {
  const root = fileUri(tmpDir('store-staged'));
  const store = storeFor(root);
  const stage = joinUri(root, 'work', 'staged', 'model.safetensors');
  const head = Buffer.from('HEAD8888');
  const a = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 3 }, (_, i) => (i * 7) % 256));
  const b = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 13) % 256));
  const write = async (offset: number, bytes: Buffer, pieces: number) => {
    const w = await store.rangeWriter!(stage, offset);
    const step = Math.ceil(bytes.length / pieces);
    for (let at = 0; at < bytes.length; at += step) await w.write(bytes.subarray(at, at + step));
    return w.commit();
  };
  // the second range first: the file starts sparse, and nothing truncates what another writer put there
  const cb = await write(head.length + a.length, b, 3);
  const failed = await store.rangeWriter!(joinUri(root, 'work', 'staged', 'never.safetensors'), 8);
  await failed.abort();
  assert.equal(await store.stat(failed.uri), null, 'a writer that wrote nothing created nothing');
  const ca = await write(head.length, a, 4);
  assert.deepEqual(
    [ca.offset, ca.bytes, ca.sha256],
    [head.length, a.length, createHash('sha256').update(a).digest('hex')],
  );
  assert.equal(cb.offset, head.length + a.length);

  const out = joinUri(root, 'out', 'model.safetensors');
  const total = head.length + a.length + b.length;
  assert.equal(
    await store.publishStaged!(out, joinUri(root, 'work', 'staged', 'short'), head, total).catch((e) => e.name),
    'NotFoundError',
  );
  await assert.rejects(
    store.publishStaged!(out, stage, head, total + 1),
    /holds \d+ bytes, \d+ expected; resume the run/,
  );
  assert.equal(await store.stat(out), null, 'nothing published from a short stage');
  assert.equal(await store.publishStaged!(out, stage, head, total), total);
  assert.ok(Buffer.from(await store.readAll(out)).equals(Buffer.concat([head, a, b])), 'the published bytes');
  const [so, ss] = [fs.statSync(new URL(out)), fs.statSync(new URL(stage))];
  assert.equal(so.ino, ss.ino, 'the output is the staged file itself (linked, not copied)');
  // a retried publish (the stage is still there) gives the same output; clearing the work keeps the output
  assert.equal(await store.publishStaged!(out, stage, head, total), total);
  await store.delete(stage);
  assert.ok(Buffer.from(await store.readAll(out)).equals(Buffer.concat([head, a, b])), 'the output outlives the stage');
  assert.deepEqual(fs.readdirSync(path.dirname(new URL(out).pathname)), ['model.safetensors'], 'no temp file');
});

test('s3: multipart uploads assemble the exact bytes', async () => {
  const uri = joinUri(s3Prefix('multipart'), 'big.bin');
  const store = new S3Store(s3Client(), 5 * 1024 * 1024);
  const w = await store.writer(uri);
  const chunks = [Buffer.alloc(3 * 1024 * 1024, 7), Buffer.alloc(4 * 1024 * 1024, 9), Buffer.alloc(1234, 3)];
  for (const c of chunks) await w.write(c);
  const committed = await w.commit();
  const all = Buffer.concat(chunks);
  assert.equal(committed.bytes, all.length);
  assert.deepEqual(Buffer.from(await store.readAll(uri)), all);
});

test('s3: a server that is down gives a one-line error saying what to do', async () => {
  const saved = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:1';
  try {
    const { S3Client } = await import('@aws-sdk/client-s3');
    const store = new S3Store(
      new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, maxAttempts: 1 }),
    );
    await assert.rejects(
      store.stat('s3://b/k'),
      /cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:1; start it with 'mergeflow stack up'/,
    );
  } finally {
    process.env.AWS_ENDPOINT_URL_S3 = saved;
  }
});
