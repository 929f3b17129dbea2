/** s3:// store on the AWS SDK v3: one client per process, ranged GETs, multipart uploads that appear only on completion. */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Committed, NotFoundError, ObjectStat, ObjectWriter, Store, StoreError } from './types';
import { parseS3 } from './uri';

let shared: S3Client | undefined;

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
  if (
    err.name === 'AccessDenied' ||
    err.name === 'InvalidAccessKeyId' ||
    err.name === 'SignatureDoesNotMatch' ||
    status === 403
  ) {
    const why = err.name && err.name !== 'Unknown' ? err.name : `HTTP ${status}`;
    return new StoreError(`${uri}: access denied by S3 (${why}); check AWS_ACCESS_KEY_ID / AWS_PROFILE`);
  }
  return new StoreError(`${uri}: S3 request failed: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`);
}

async function bodyBytes(body: unknown): Promise<Uint8Array> {
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> };
  if (!b?.transformToByteArray) throw new StoreError('S3 returned no body');
  return b.transformToByteArray();
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
      return { uri, size: Number(r.ContentLength ?? 0), etag: r.ETag?.replace(/"/g, '') };
    } catch (e) {
      const err = describeS3Error(e, uri);
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  async read(uri: string, offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const { bucket, key } = parseS3(uri);
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }),
      );
      const bytes = await bodyBytes(r.Body);
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

  async writer(uri: string): Promise<ObjectWriter> {
    const { bucket, key } = parseS3(uri);
    const client = this.client;
    const partSize = this.partSize;
    const hash = createHash('sha256');
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];
    let done = false;

    const flushPart = async (): Promise<void> => {
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!uploadId) {
        const r = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
        uploadId = r.UploadId;
      }
      const PartNumber = parts.length + 1;
      const r = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: body }),
      );
      parts.push({ ETag: r.ETag ?? '', PartNumber });
    };

    const abort = async (): Promise<void> => {
      if (done) return;
      done = true;
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
          if (pendingBytes >= partSize) await flushPart();
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

  async delete(uri: string): Promise<void> {
    const { bucket, key } = parseS3(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (e) {
      throw describeS3Error(e, uri);
    }
  }
}
