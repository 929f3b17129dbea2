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
  /** Set when the bytes are a range of a larger object (Store.rangeWriter): where they start in it. */
  offset?: number;
}

/** A byte range of a stored object, one piece of an object composed by Store.compose. */
export interface Segment {
  uri: string;
  offset: number;
  length: number;
}

/** Composing an object from a head and byte ranges of other objects; progress counts bytes placed. */
export interface ComposeOptions {
  progress?: (done: number, total: number) => void | Promise<void>;
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
  /**
   * `expect` pins the read to one version of the object (an etag from stat): a replaced object throws
   * InputChangedError instead of returning bytes of another version.
   */
  read(uri: string, offset: number, length: number, expect?: string): Promise<Uint8Array>;
  readAll(uri: string): Promise<Uint8Array>;
  /** Object URIs under a prefix (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** `sizeHint` (total bytes, when known) lets S3 pick a part size that fits the 10 000-part limit. */
  writer(uri: string, sizeHint?: number): Promise<ObjectWriter>;
  /**
   * Write `head` followed by the segments as one object, atomically, without passing the segments' bytes
   * through this process where the store can avoid it (S3: UploadPartCopy). Returns the object's size.
   */
  compose(uri: string, head: Uint8Array, segments: readonly Segment[], opts?: ComposeOptions): Promise<number>;
  /**
   * Optional (the file store): a writer of bytes [offset, offset + n) of `stage`, an object that several writers
   * fill in place (created sparse when absent). Its commit makes the range durable and returns it with `offset`;
   * an abort leaves what was written, for the next attempt to overwrite with the same bytes.
   */
  rangeWriter?(stage: string, offset: number): Promise<ObjectWriter>;
  /**
   * Optional, with rangeWriter: write `head` at the front of `stage` (filled by range writers up to `total`
   * bytes) and make it appear at `uri` atomically, without copying its bytes. `stage` stays until deleted, so a
   * retried publish finds it again. Returns the object's size.
   */
  publishStaged?(uri: string, stage: string, head: Uint8Array, total: number): Promise<number>;
  /** Abort unfinished multipart uploads under a prefix (left by a killed writer); returns how many. */
  abortUploads(prefix: string): Promise<number>;
  delete(uri: string): Promise<void>;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

export class NotFoundError extends StoreError {
  override name = 'NotFoundError';
}

/** A pinned object was replaced since it was pinned (its etag, or a file's size and mtime, changed). */
export class InputChangedError extends StoreError {
  override name = 'InputChangedError';
}

/** The store refused the credentials or the access: retrying cannot help. */
export class AccessDeniedError extends StoreError {
  override name = 'AccessDeniedError';
}
