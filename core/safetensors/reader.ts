/** Lazy safetensors reader: reads the header once, then one tensor at a time by byte range. */
import { storeFor, InputChangedError, NotFoundError } from '../store';
import { toFloat32 } from './dtype';
import { checkFinite } from './finite';
import { headerLength, parseHeader, SafetensorsError, SafetensorsHeader, TensorInfo } from './header';

const FIRST_READ = 64 * 1024;

export class SafetensorsFile {
  private readonly byName: Map<string, TensorInfo>;

  private constructor(
    readonly uri: string,
    readonly size: number,
    readonly header: SafetensorsHeader,
    /** The version read (S3 ETag, or a file's size-mtime): every tensor read is pinned to it. */
    readonly etag?: string,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** `expect`: the version the caller pinned earlier (from `etag`); another version throws InputChangedError. */
  static async open(uri: string, expect?: string): Promise<SafetensorsFile> {
    const store = storeFor(uri);
    const st = await store.stat(uri);
    if (!st) throw new NotFoundError(`${uri}: checkpoint not found; check the path or S3 key`);
    if (expect !== undefined && st.etag !== expect)
      throw new InputChangedError(
        `${uri} was replaced since the run was planned (version ${expect} -> ${st.etag}); restore it or start a new run`,
      );
    const first = await store.read(uri, 0, Math.min(st.size, FIRST_READ), st.etag);
    const n = headerLength(first, uri, st.size);
    const json = 8 + n <= first.byteLength ? first.subarray(8, 8 + n) : await store.read(uri, 8, n, st.etag);
    return new SafetensorsFile(uri, st.size, parseHeader(json, uri, st.size), st.etag);
  }

  get tensors(): TensorInfo[] {
    return this.header.tensors;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new SafetensorsError(`${this.uri}: no tensor named '${name}'`);
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return storeFor(this.uri).read(this.uri, this.header.dataStart + t.begin, t.end - t.begin, this.etag);
  }

  /** The tensor as float32; refuses NaN and ±Inf (see `checkFinite`). */
  async readFloat32(name: string): Promise<Float32Array> {
    return checkFinite(toFloat32(await this.readBytes(name), this.info(name).dtype), this.uri, name);
  }
}
