/** One interface over file:// and s3:// storage. URIs are always absolute: file:///abs/path or s3://bucket/key. */

export interface ObjectStat {
  uri: string;
  size: number;
  /** Changes whenever the content does: the S3 ETag; for files, size and modification time. For cache keys. */
  etag?: string;
  /** Last modification time, where the store reports it. */
  modified?: Date;
}

export interface Committed {
  uri: string;
  bytes: number;
  sha256: string;
}

/**
 * A streaming write that becomes visible only on commit(): files are written under a temporary name
 * and renamed; S3 objects are multipart uploads, which S3 shows only once completed.
 */
export interface ObjectWriter {
  readonly uri: string;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<Committed>;
  abort(): Promise<void>;
}

export interface Store {
  readonly scheme: 'file' | 's3';
  /** null when there is no object at that URI. */
  stat(uri: string): Promise<ObjectStat | null>;
  read(uri: string, offset: number, length: number): Promise<Uint8Array>;
  readAll(uri: string): Promise<Uint8Array>;
  /** Object URIs under a prefix (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  writer(uri: string): Promise<ObjectWriter>;
  delete(uri: string): Promise<void>;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

export class NotFoundError extends StoreError {
  override name = 'NotFoundError';
}
