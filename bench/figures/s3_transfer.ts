/**
 * S3 transfer through core/store against the local S3 server: reading one object as parallel ranged GETs
 * (what the merge shards and the safetensors reader do) against one plain GET of the same object, and
 * writing it as a multipart upload (the store's streaming writer) against a single PUT and against the file
 * system. Each pair runs back to back, a few times; the figures are medians.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { storeFor } from '../../core/store';
import { s3Client } from '../../core/store/s3';
import { parseS3 } from '../../core/store/uri';
import { benchPrefix, median, s3Unavailable, useStack } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';

const MiB = 1024 * 1024;
/** The store's default part size (MERGEFLOW_S3_PART_BYTES) and the range size the readers use. */
const CHUNK = 8 * MiB;
const PARALLEL = 8;

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/** Read [0, size) as CHUNK-sized ranged GETs, PARALLEL in flight, into one buffer. */
async function rangedRead(uri: string, size: number): Promise<Uint8Array> {
  const store = storeFor(uri);
  const out = new Uint8Array(size);
  let next = 0;
  const lane = async () => {
    while (next < size) {
      const off = next;
      next += CHUNK;
      out.set(await store.read(uri, off, Math.min(CHUNK, size - off)), off);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return out;
}

async function multipartWrite(uri: string, bytes: Uint8Array): Promise<void> {
  const w = await storeFor(uri).writer(uri);
  for (let off = 0; off < bytes.length; off += CHUNK) await w.write(bytes.subarray(off, off + CHUNK));
  await w.commit();
}

async function singlePut(uri: string, bytes: Uint8Array): Promise<void> {
  const { bucket, key } = parseS3(uri);
  await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
}

/** Write the file and flush it to the disk, as a durable local write. */
function fileWrite(file: string, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, Math.min(CHUNK, bytes.length - off));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export const bench: Bench = {
  name: 's3_transfer',
  description: `S3 (local server): ${PARALLEL} parallel ${CHUNK / MiB} MiB ranged GETs vs one GET; multipart write vs one PUT and vs the file system`,
  unavailable: s3Unavailable,
  async run({ dir, quick, log }): Promise<Figure[]> {
    useStack();
    const mib = quick ? 32 : 256;
    const reps = quick ? 1 : 3;
    const size = mib * MiB;
    const tag = `${mib}MiB${quick ? '.quick' : ''}`;
    const prefix = benchPrefix('s3-transfer');
    const bytes = randomFillSync(new Uint8Array(size));
    const mbps = (s: number) => size / 1e6 / s;
    const t = { multipart: [] as number[], put: [] as number[], file: [] as number[] };
    const r = { ranged: [] as number[], one: [] as number[] };
    const store = storeFor(prefix);
    const uris: string[] = [];
    try {
      for (let i = 0; i < reps; i++) {
        const mp = `${prefix}/multipart-${i}.bin`;
        const put = `${prefix}/put-${i}.bin`;
        uris.push(mp, put);
        t.multipart.push(await seconds(() => multipartWrite(mp, bytes)));
        t.put.push(await seconds(() => singlePut(put, bytes)));
        const file = path.join(dir, `file-${i}.bin`);
        t.file.push(await seconds(async () => fileWrite(file, bytes)));
        fs.rmSync(file);
        log(
          `write ${i + 1}/${reps}: multipart ${mbps(t.multipart[i]).toFixed(0)} MB/s, one PUT ${mbps(t.put[i]).toFixed(0)} MB/s, file ${mbps(t.file[i]).toFixed(0)} MB/s`,
        );
      }
      const obj = uris[0];
      for (let i = 0; i < reps; i++) {
        let got: Uint8Array = new Uint8Array(0);
        r.ranged.push(await seconds(async () => (got = await rangedRead(obj, size))));
        if (!sameBytes(got, bytes)) throw new Error(`${obj}: the ranged reads returned other bytes than were written`);
        r.one.push(await seconds(async () => (got = await store.readAll(obj))));
        if (!sameBytes(got, bytes)) throw new Error(`${obj}: the GET returned other bytes than were written`);
        log(
          `read ${i + 1}/${reps}: ranged ${mbps(r.ranged[i]).toFixed(0)} MB/s, one GET ${mbps(r.one[i]).toFixed(0)} MB/s`,
        );
      }
    } finally {
      for (const u of uris) await store.delete(u).catch(() => undefined);
    }
    const multipart = mbps(median(t.multipart));
    return [
      figure({
        name: `s3.ranged_get.${PARALLEL}x${CHUNK / MiB}MiB.${tag}`,
        value: mbps(median(r.ranged)),
        unit: 'MB/s',
        baseline: 'one GET of the same object',
        baseline_value: mbps(median(r.one)),
        goal: null,
      }),
      figure({
        name: `s3.multipart_write.vs_put.${tag}`,
        value: multipart,
        unit: 'MB/s',
        baseline: 'one PUT of the same bytes',
        baseline_value: mbps(median(t.put)),
        goal: null,
      }),
      figure({
        name: `s3.multipart_write.vs_file.${tag}`,
        value: multipart,
        unit: 'MB/s',
        baseline: 'file write + fsync on the local disk',
        baseline_value: mbps(median(t.file)),
        goal: null,
      }),
    ];
  },
};
