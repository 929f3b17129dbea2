/** s3:// store on the AWS SDK v3: one client per process, ranged GETs, multipart uploads that appear only on completion. */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import {
  AccessDeniedError,
  Committed,
  ComposeOptions,
  InputChangedError,
  NotFoundError,
  ObjectStat,
  ObjectWriter,
  Segment,
  Store,
  StoreError,
} from './types';
import { parseS3 } from './uri';
import { reportBytes } from '../io_progress';
import { copyPlan, partSizeFor, pool, UploadPiece } from './s3_parts';

let shared: S3Client | undefined;

/** Parts uploaded or copied at once by one writer or compose. */
const UPLOAD_CONCURRENCY = Math.max(1, Number(process.env.MERGEFLOW_S3_CONCURRENCY ?? 4));

/** The process-wide client. Endpoint, region and credentials come from the standard AWS variables and chain. */
export function s3Client(): S3Client {
  if (!shared) {
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    shared = new S3Client({
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      // S3-compatible servers on a custom endpoint (MinIO, Ceph, ...) expect path-style addressing.
      forcePathStyle: endpoint !== undefined && process.env.MERGEFLOW_S3_VIRTUAL_HOSTED !== '1',
      maxAttempts: 5,
    });
  }
  return shared;
}

function endpointName(): string {
  return process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? 'AWS S3';
}

export function describeS3Error(e: unknown, uri: string): Error {
  const err = e as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  if (err.name === 'NoSuchKey' || err.name === 'NotFound' || (status === 404 && err.name !== 'NoSuchBucket')) {
    return new NotFoundError(`${uri}: no such S3 object; check the key or upload it first`);
  }
  if (err.name === 'NoSuchBucket') return new NotFoundError(`${uri}: S3 bucket does not exist; create it first`);
  if (err.code === 'ECONNREFUSED' || err.name === 'ECONNREFUSED' || /ECONNREFUSED|connect E/.test(err.message ?? '')) {
    return new StoreError(
      `${uri}: cannot reach the S3 endpoint ${endpointName()}; start it with 'mergeflow stack up' or set AWS_ENDPOINT_URL_S3`,
    );
  }
  if (err.name === 'CredentialsProviderError') {
    return new StoreError(
      `${uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE ('mergeflow stack up' writes them for the local stack)`,
    );
  }
  if (err.name === 'PreconditionFailed' || status === 412) {
    return new InputChangedError(
      `${uri} was replaced since the run pinned it (its S3 ETag changed); restore it or start a new run`,
    );
  }
  if (err.name === 'InvalidAccessKeyId' || err.name === 'SignatureDoesNotMatch') {
    return new AccessDeniedError(
      `${uri}: S3 rejected the credentials (${err.name}) for bucket '${bucketOf(uri)}'; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to valid keys`,
    );
  }
  if (err.name === 'AccessDenied' || status === 403) {
    return new AccessDeniedError(
      `${uri}: access denied by S3 (${err.name && err.name !== 'Unknown' ? err.name : `HTTP ${status}`}) on bucket '${bucketOf(uri)}'; grant these credentials access to the bucket or set AWS_ACCESS_KEY_ID / AWS_PROFILE to ones that have it`,
    );
  }
  return new StoreError(`${uri}: S3 request failed: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`);
}

function bucketOf(uri: string): string {
  try {
    return parseS3(uri).bucket;
  } catch {
    return uri;
  }
}

/** The body of a GET, streamed chunk by chunk (each reported as progress) into one buffer. */
async function bodyBytes(body: unknown, length?: number): Promise<Uint8Array> {
  if (!body || typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
    const b = body as { transformToByteArray?: () => Promise<Uint8Array> };
    if (!b?.transformToByteArray) throw new StoreError('S3 returned no body');
    return b.transformToByteArray();
  }
  const chunks: Uint8Array[] = [];
  const out = length === undefined ? undefined : Buffer.allocUnsafe(length);
  let got = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    if (out) {
      if (got + chunk.byteLength > out.byteLength)
        throw new StoreError(`S3 returned more than the ${length} bytes asked`);
      out.set(chunk, got);
    } else chunks.push(chunk);
    got += chunk.byteLength;
    reportBytes(chunk.byteLength);
  }
  return out ? out.subarray(0, got) : Buffer.concat(chunks, got);
}

export class S3Store implements Store {
  readonly scheme = 's3' as const;
  constructor(
    private readonly client: S3Client = s3Client(),
    private readonly partSize = Number(process.env.MERGEFLOW_S3_PART_BYTES ?? 8 * 1024 * 1024),
  ) {}

  async stat(uri: string): Promise<ObjectStat | null> {
    const { bucket, key } = parseS3(uri);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { uri, size: Number(r.ContentLength ?? 0), etag: r.ETag?.replace(/"/g, ''), modified: r.LastModified };
    } catch (e) {
      const err = describeS3Error(e, uri);
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  async read(uri: string, offset: number, length: number, expect?: string): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const { bucket, key } = parseS3(uri);
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: `bytes=${offset}-${offset + length - 1}`,
          IfMatch: expect === undefined ? undefined : `"${expect}"`,
        }),
      );
      const bytes = await bodyBytes(r.Body, length);
      if (bytes.byteLength !== length) {
        throw new StoreError(`${uri}: short read, asked ${length} bytes at ${offset}, got ${bytes.byteLength}`);
      }
      return bytes;
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw describeS3Error(e, uri);
    }
  }

  async readAll(uri: string): Promise<Uint8Array> {
    const { bucket, key } = parseS3(uri);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await bodyBytes(r.Body);
    } catch (e) {
      throw describeS3Error(e, uri);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const { bucket, key } = parseS3(prefix);
    const out: string[] = [];
    let token: string | undefined;
    try {
      do {
        const r = await this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
        );
        for (const o of r.Contents ?? []) if (o.Key) out.push(`s3://${bucket}/${o.Key}`);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (e) {
      throw describeS3Error(e, prefix);
    }
    return out.sort();
  }

  /**
   * Parts go up while later bytes are still being written (a few at a time); the part size grows with the object
   * (from the size hint, or doubling every 1000 parts) so that 10 000 parts reach S3's 5 TiB object limit.
   * Unfinished uploads of the same key left by a killed writer are aborted first.
   */
  async writer(uri: string, sizeHint?: number): Promise<ObjectWriter> {
    const { bucket, key } = parseS3(uri);
    const client = this.client;
    const base = this.partSize;
    await this.abortKey(bucket, key);
    const hash = createHash('sha256');
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];
    let partsStarted = 0;
    const inFlight = new Set<Promise<void>>();
    let failed: unknown;
    let done = false;

    const send = (PartNumber: number, body: Buffer): Promise<void> => {
      const p = client
        .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: body }))
        .then((r) => {
          parts.push({ ETag: r.ETag ?? '', PartNumber });
          reportBytes(body.byteLength);
        })
        .catch((e) => void (failed ??= e))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p;
    };
    const drain = async (limit: number): Promise<void> => {
      while (inFlight.size > limit) await Promise.race(inFlight);
      if (failed) throw failed;
    };
    const flushPart = async (): Promise<void> => {
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!uploadId) {
        const r = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        uploadId = r.UploadId;
      }
      void send(++partsStarted, body);
      await drain(UPLOAD_CONCURRENCY - 1);
    };
    const partSize = (): number => partSizeFor(sizeHint, base, partsStarted + 1);

    const abort = async (): Promise<void> => {
      if (done) return;
      done = true;
      await Promise.allSettled([...inFlight]);
      if (uploadId) {
        await client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      }
    };

    return {
      uri,
      async write(chunk) {
        if (done) throw new StoreError(`${uri}: writer already closed`);
        hash.update(chunk);
        bytes += chunk.byteLength;
        pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        pendingBytes += chunk.byteLength;
        try {
          if (pendingBytes >= partSize()) await flushPart();
        } catch (e) {
          await abort();
          throw describeS3Error(e, uri);
        }
      },
      async commit(): Promise<Committed> {
        if (done) throw new StoreError(`${uri}: writer already closed`);
        try {
          if (!uploadId) {
            await client.send(
              new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.concat(pending, pendingBytes) }),
            );
          } else {
            if (pendingBytes > 0) await flushPart();
            await drain(0);
            parts.sort((a, b) => a.PartNumber - b.PartNumber);
            await client.send(
              new CompleteMultipartUploadCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                MultipartUpload: { Parts: parts },
              }),
            );
          }
          done = true;
        } catch (e) {
          await abort();
          throw describeS3Error(e, uri);
        }
        return { uri, bytes, sha256: hash.digest('hex') };
      },
      abort,
    };
  }

  /**
   * One multipart upload: the head (with enough of the first segment to reach the 5 MiB part minimum) is sent,
   * the rest is copied server-side with UploadPartCopy, a few parts at a time. Only pieces shorter than the part
   * minimum between two segments are read and re-sent.
   */
  async compose(
    uri: string,
    head: Uint8Array,
    segments: readonly Segment[],
    opts: ComposeOptions = {},
  ): Promise<number> {
    const { bucket, key } = parseS3(uri);
    const total = head.byteLength + segments.reduce((a, s) => a + s.length, 0);
    const pieces = copyPlan(head.byteLength, segments, this.partSize);
    if (pieces.length === 1 && pieces[0].kind === 'send') {
      const w = await this.writer(uri);
      try {
        await w.write(await this.gather(head, pieces[0]));
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
      await opts.progress?.(total, total);
      return total;
    }
    await this.abortKey(bucket, key);
    let uploadId: string | undefined;
    let done = 0;
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId;
      const etags = await pool(pieces, UPLOAD_CONCURRENCY, async (piece, i) => {
        const PartNumber = i + 1;
        let etag: string | undefined;
        if (piece.kind === 'copy') {
          const src = parseS3(piece.uri);
          const r = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber,
              CopySource: `${src.bucket}/${encodeURI(src.key)}`,
              CopySourceRange: `bytes=${piece.offset}-${piece.offset + piece.length - 1}`,
            }),
          );
          etag = r.CopyPartResult?.ETag;
        } else {
          const body = await this.gather(head, piece);
          etag = (
            await this.client.send(
              new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: body }),
            )
          ).ETag;
        }
        done += piece.length;
        reportBytes(piece.length);
        await opts.progress?.(done, total);
        return { ETag: etag ?? '', PartNumber };
      });
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags },
        }),
      );
    } catch (e) {
      if (uploadId)
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      throw e instanceof StoreError ? e : describeS3Error(e, uri);
    }
    return total;
  }

  /** The bytes of a 'send' piece: a slice of the head and ranges read from segments. */
  private async gather(head: Uint8Array, piece: UploadPiece): Promise<Buffer> {
    if (piece.kind !== 'send') throw new Error('not a send piece');
    const bufs: Uint8Array[] = [];
    for (const r of piece.ranges) {
      bufs.push(
        r.uri === undefined ? head.subarray(r.offset, r.offset + r.length) : await this.read(r.uri, r.offset, r.length),
      );
    }
    return Buffer.concat(bufs);
  }

  /** Unfinished multipart uploads whose key starts with the prefix's key. */
  async abortUploads(prefix: string): Promise<number> {
    const { bucket, key } = parseS3(prefix);
    const match = (k: string): boolean => k.startsWith(key);
    const n = await this.abortWhere(bucket, key, match);
    // SeaweedFS matches an upload-listing prefix only within one folder: look bucket-wide when it found none
    return n > 0 ? n : this.abortWhere(bucket, '', match);
  }

  private abortKey(bucket: string, key: string): Promise<number> {
    return this.abortWhere(bucket, key, (k) => k === key).catch((e) => {
      // best effort: credentials that may write but not list uploads still get to write
      if (e instanceof AccessDeniedError) return 0;
      throw e;
    });
  }

  private async abortWhere(bucket: string, prefix: string, match: (key: string) => boolean): Promise<number> {
    let n = 0;
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    try {
      do {
        const r = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: bucket,
            Prefix: prefix || undefined,
            KeyMarker: keyMarker,
            UploadIdMarker: idMarker,
          }),
        );
        for (const u of r.Uploads ?? []) {
          if (!u.Key || !u.UploadId || !match(u.Key)) continue;
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
          n++;
        }
        [keyMarker, idMarker] = r.IsTruncated ? [r.NextKeyMarker, r.NextUploadIdMarker] : [undefined, undefined];
      } while (keyMarker);
    } catch (e) {
      throw describeS3Error(e, `s3://${bucket}/${prefix}`);
    }
    return n;
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = parseS3(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (e) {
      throw describeS3Error(e, uri);
    }
  }
}
