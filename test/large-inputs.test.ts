/**
 * Inputs pinned for a run, leftovers of killed writers, refused access and part sizes, against the real S3 server
 * and files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { mergeConfigSchema } from '../core/config/schema';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { AccessDeniedError, InputChangedError, joinUri, parseS3, storeFor } from '../core/store';
import { S3Store, s3Client } from '../core/store/s3';
import { copyPlan, MAX_PART, MAX_PARTS, MIN_PART, partSizeFor } from '../core/store/s3_parts';
import { clearWork, coreSteps, openInputs, planMerge } from '../core/pipeline';
import { finalOnBadInput } from '../activities/heartbeat';
import { fileUri, REPO, s3Prefix, tmpDir, uniq } from './helpers/env';

const roots = (label: string): [string, string][] => [
  ['file', fileUri(tmpDir(label))],
  ['s3', s3Prefix(label)],
];

async function replaceWithOther(root: string, target: string): Promise<void> {
  // same shapes, other values: the same size, so only the pinned version can tell
  const other = await writeSyntheticCheckpoints(joinUri(root, 'other'), { seed: 99, models: 1, dim: 32, layers: 2 });
  const bytes = await storeFor(other.models[0].checkpoint).readAll(other.models[0].checkpoint);
  const before = await storeFor(target).stat(target);
  await new Promise((r) => setTimeout(r, 20)); // a later mtime for the file store
  const w = await storeFor(target).writer(target);
  await w.write(bytes);
  await w.commit();
  assert.equal((await storeFor(target).stat(target))?.size, before?.size);
}

for (const [kind, root] of roots('pinned')) {
  test(`${kind}: a checkpoint replaced after planning is refused, final, naming it; never merged`, async () => {
    const ck = await writeSyntheticCheckpoints(joinUri(root, 'in'), { seed: 4, models: 2, dim: 32, layers: 2 });
    const config = mergeConfigSchema.parse({
      method: 'task_arithmetic',
      base: ck.base,
      models: ck.models,
      output: joinUri(root, 'out', 'm.safetensors'),
      shards: 1,
    });
    const plan = await planMerge(config, uniq('pin'));
    assert.ok(plan.models[1].versions[ck.models[1].checkpoint], 'the plan records the version');
    const steps = coreSteps();
    const coefficients = await steps.writeCoefficients(plan, {});
    // opened before the swap: its later reads are still pinned
    const open = await openInputs(plan);
    await replaceWithOther(root, ck.models[1].checkpoint);
    await assert.rejects(open.models[1].readFloat32('layers.0.weight'), InputChangedError);
    const err = await finalOnBadInput(() => steps.mergeShard(plan, 0, {}, coefficients)).then(
      () => assert.fail('merged a replaced input'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'InputChangedError');
    assert.equal(err.nonRetryable, true);
    assert.ok(err.message.includes(ck.models[1].checkpoint), err.message);
    assert.match(err.message, /start a new run/);
    assert.deepEqual(
      (await storeFor(root).list(joinUri(root, 'out') + '/')).filter(
        (u) => u.includes('/parts/') || u.includes('/staged/'),
      ),
      [],
      'no part written from mixed inputs',
    );
  });
}

async function uploadsOf(uri: string): Promise<string[]> {
  const { bucket, key } = parseS3(uri);
  const r = await s3Client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (r.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId ?? '');
}

/** A separate process that starts writing `uri` past one part, says so, and waits to be killed. */
async function killedWriter(uri: string): Promise<void> {
  const script = `
    const { S3Store, s3Client } = require(${JSON.stringify(path.join(REPO, 'dist/core/store/s3.js'))});
    const { storeFor } = require(${JSON.stringify(path.join(REPO, 'dist/core/store/index.js'))});
    (async () => {
      const uri = process.argv[1];
      const store = uri.startsWith('s3://') ? new S3Store(s3Client(), 5 * 1024 * 1024) : storeFor(uri);
      const w = await store.writer(uri);
      await w.write(Buffer.alloc(6 * 1024 * 1024, 1));
      process.stdout.write('writing\\n');
      setInterval(() => {}, 1000);
    })();`;
  const child = spawn(process.execPath, ['-e', script, uri], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('writing') && resolve());
    child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
  });
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

for (const [kind, root] of roots('leftover')) {
  test(`${kind}: a writer SIGKILLed mid-write leaves nothing once the next attempt writes`, async () => {
    const uri = joinUri(root, 'out', 'model.safetensors');
    await killedWriter(uri);
    if (kind === 's3') assert.equal((await uploadsOf(uri)).length, 1, 'the killed upload is there');
    await storeFor(uri)
      .writer(uri)
      .then(async (w) => {
        await w.write(Buffer.from('done'));
        await w.commit();
      });
    if (kind === 's3') assert.deepEqual(await uploadsOf(uri), [], 'no orphaned upload');
    else assert.deepEqual(fs.readdirSync(new URL(joinUri(root, 'out'))), ['model.safetensors'], 'no temp file');
  });

  test(`${kind}: clearing a run's work aborts uploads a killed shard left under it`, async () => {
    const workPrefix = joinUri(root, '.mergeflow-work', uniq('run')) + '/';
    const part = `${workPrefix}parts/part-00000.bin`;
    await killedWriter(part);
    await clearWork({ workPrefix });
    if (kind === 's3') assert.deepEqual(await uploadsOf(part), []);
    else assert.equal(fs.existsSync(new URL(workPrefix)), false);
  });
}

test('s3: bad credentials and refused access are AccessDeniedError naming the bucket and what to set', async () => {
  const prefix = s3Prefix('denied');
  const uri = joinUri(prefix, 'x.bin');
  const bad = new S3Store(
    new S3Client({
      region: 'us-east-1',
      endpoint: process.env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: 'mergeflow-wrong-key', secretAccessKey: 'wrong-secret-key' },
    }),
  );
  const { bucket } = parseS3(uri);
  for (const op of [() => bad.read(uri, 0, 1), () => bad.stat(uri), () => bad.list(prefix)]) {
    const err = await op().then(
      () => assert.fail('no error'),
      (e: Error) => e,
    );
    assert.ok(err instanceof AccessDeniedError, `${err.name}: ${err.message}`);
    assert.ok(err.message.includes(`'${bucket}'`), err.message);
    assert.match(err.message, /AWS_ACCESS_KEY_ID/);
  }
  const wrapped = await finalOnBadInput(() => bad.read(uri, 0, 1)).catch((e: ApplicationFailure) => e);
  assert.equal((wrapped as ApplicationFailure).nonRetryable, true);
});

test('part sizes scale with the object: 10 000 parts reach 5 TiB, none over 5 GiB', () => {
  const base = 8 * 1024 * 1024;
  let unknown = 0;
  for (let n = 1; n <= MAX_PARTS; n++) {
    const size = partSizeFor(undefined, base, n);
    assert.ok(size >= MIN_PART && size <= MAX_PART);
    unknown += size;
  }
  assert.ok(unknown >= 5 * 1024 ** 4, `an object of unknown size can reach ${unknown} bytes`);
  for (const total of [1e6, 80 * 1024 ** 3, 140e9, 4 * 1024 ** 4]) {
    const size = partSizeFor(total, base, 1);
    assert.ok(Math.ceil(total / size) <= MAX_PARTS && size <= MAX_PART, `${total}: ${size}`);
  }
});

test('copy plans: every piece but the last within S3 part limits, covering the bytes in order', () => {
  const M = 1024 * 1024;
  const cases = [
    [1, 2, 3].map((n) => n * M),
    [3 * M, 9 * M, 1, 40 * M, 5 * M, 2 * M],
    [200 * M],
    [6 * 1024 * M, 12 * M],
  ];
  for (const lengths of cases) {
    const segs = lengths.map((length, i) => ({ uri: `s3://b/p${i}`, offset: 0, length }));
    const pieces = copyPlan(1000, segs, 8 * M);
    const flat: [string | undefined, number, number][] = [];
    pieces.forEach((p, i) => {
      if (i < pieces.length - 1) assert.ok(p.length >= MIN_PART, `piece ${i} of ${lengths}: ${p.length}`);
      assert.ok(p.length <= MAX_PART);
      if (p.kind === 'copy') flat.push([p.uri, p.offset, p.length]);
      else for (const r of p.ranges) flat.push([r.uri, r.offset, r.length]);
    });
    // consecutive ranges tile the head and each segment exactly
    const want: [string | undefined, number][] = [
      [undefined, 1000],
      ...segs.map((s): [string, number] => [s.uri, s.length]),
    ];
    let k = 0;
    for (const [uri, length] of want) {
      let pos = 0;
      while (pos < length) {
        const [u, off, n] = flat[k++];
        assert.equal(u, uri);
        assert.equal(off, pos);
        pos += n;
      }
    }
    assert.equal(k, flat.length);
  }
});
