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
