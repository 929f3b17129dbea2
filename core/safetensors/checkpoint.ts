/**
 * A checkpoint is one .safetensors object or a Hugging Face folder: model.safetensors, or shards listed in
 * model.safetensors.index.json. Tensors are looked up by name across shards.
 */
import { joinUri, NotFoundError, readJson, storeFor, dirnameUri } from '../store';
import { SafetensorsError, TensorInfo } from './header';
import { SafetensorsFile } from './reader';
import { toFloat32 } from './dtype';
import { checkFinite } from './finite';

export const INDEX_NAME = 'model.safetensors.index.json';
export const SINGLE_NAME = 'model.safetensors';

/**
 * A shard name from an index must name a file inside the checkpoint's folder: a plain relative path with no
 * `..` segment, no leading slash or backslash and no scheme, so an index cannot make a run read (or hash and
 * publish the digest of) an object elsewhere on the disk or in the bucket.
 */
export function checkShardName(indexUri: string, shard: unknown): void {
  const s = typeof shard === 'string' ? shard : '';
  const ok =
    /\.safetensors$/.test(s) &&
    !/^[/\\]/.test(s) &&
    !s.includes('\\') &&
    !s.includes('\0') &&
    !s.includes('%') &&
    !/^[a-z][a-z0-9+.-]*:/i.test(s) &&
    s.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
  if (!ok)
    throw new SafetensorsError(
      `${indexUri}: shard ${JSON.stringify(shard)} is not a .safetensors file inside the checkpoint's folder; weight_map must name files beside the index`,
    );
}

export class Checkpoint {
  private readonly where = new Map<string, SafetensorsFile>();
  private readonly infos: TensorInfo[] = [];

  private constructor(
    readonly uri: string,
    readonly files: SafetensorsFile[],
    /** Folder holding the weights (for config.json and friends), or undefined for a bare file. */
    readonly folder: string | undefined,
  ) {
    for (const f of files) {
      for (const t of f.tensors) {
        if (this.where.has(t.name)) throw new SafetensorsError(`${uri}: tensor '${t.name}' appears in two shards`);
        this.where.set(t.name, f);
        this.infos.push(t);
      }
    }
  }

  /**
   * `pins` maps file URIs to the versions (etags) a run recorded: those files must still be those versions,
   * and every later read checks it.
   */
  static async open(uri: string, pins?: Readonly<Record<string, string>>): Promise<Checkpoint> {
    const openFile = (u: string): Promise<SafetensorsFile> => SafetensorsFile.open(u, pins?.[u]);
    if (uri.endsWith('.safetensors')) return new Checkpoint(uri, [await openFile(uri)], undefined);
    if (uri.endsWith('.index.json')) return Checkpoint.openIndex(uri, dirnameUri(uri), openFile);
    const store = storeFor(uri);
    const index = joinUri(uri, INDEX_NAME);
    if (await store.stat(index)) return Checkpoint.openIndex(index, uri, openFile);
    const single = joinUri(uri, SINGLE_NAME);
    if (await store.stat(single)) return new Checkpoint(uri, [await openFile(single)], uri);
    throw new NotFoundError(
      `${uri}: not a checkpoint; expected a .safetensors file or a folder with ${SINGLE_NAME} or ${INDEX_NAME}`,
    );
  }

  private static async openIndex(
    indexUri: string,
    folder: string,
    openFile: (uri: string) => Promise<SafetensorsFile>,
  ): Promise<Checkpoint> {
    const idx = (await readJson(
      indexUri,
      (why) => new SafetensorsError(`${indexUri}: not a valid index JSON (${why})`),
    )) as { weight_map?: Record<string, string> };
    if (!idx.weight_map || typeof idx.weight_map !== 'object') {
      throw new SafetensorsError(`${indexUri}: missing "weight_map"`);
    }
    const shardNames = [...new Set(Object.values(idx.weight_map))].sort();
    for (const s of shardNames) checkShardName(indexUri, s);
    const files = await Promise.all(shardNames.map((s) => openFile(joinUri(folder, s))));
    const ck = new Checkpoint(folder, files, folder);
    for (const [name, shard] of Object.entries(idx.weight_map)) {
      const f = ck.where.get(name);
      if (!f)
        throw new SafetensorsError(
          `${indexUri}: weight_map lists '${name}' in ${shard} but that shard has no such tensor`,
        );
      if (!f.uri.endsWith('/' + shard))
        throw new SafetensorsError(`${indexUri}: '${name}' is mapped to ${shard} but found in ${f.uri}`);
    }
    return ck;
  }

  /** Tensors in a stable order: file by file, data order within a file. */
  get tensors(): readonly TensorInfo[] {
    return this.infos;
  }

  /** Each file's version (etag), by URI: what a plan pins. */
  get versions(): Record<string, string> {
    return Object.fromEntries(this.files.map((f) => [f.uri, f.etag ?? '']));
  }

  get size(): number {
    return this.files.reduce((a, f) => a + f.size, 0);
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorInfo {
    const f = this.where.get(name);
    if (!f) throw new SafetensorsError(`${this.uri}: no tensor named '${name}'`);
    return f.info(name);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const f = this.where.get(name);
    if (!f) throw new SafetensorsError(`${this.uri}: no tensor named '${name}'`);
    return f.readBytes(name);
  }

  /** The tensor as float32; refuses NaN and ±Inf (see `checkFinite`). */
  async readFloat32(name: string): Promise<Float32Array> {
    return checkFinite(toFloat32(await this.readBytes(name), this.info(name).dtype), this.uri, name);
  }
}
