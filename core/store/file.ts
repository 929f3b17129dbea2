/** file:// store: positioned reads, temp-file-then-rename publishes. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
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
import { filePath } from './uri';
import { reportBytes } from '../io_progress';

const COPY_CHUNK = 16 * 1024 * 1024;
/** Largest single read: long reads go in pieces, each reported as progress. */
const FILE_READ = 8 * 1024 * 1024;
const TMP_MARK = '.tmp-';

/** The version tag of a file: it changes when the file is rewritten or replaced. */
function fileEtag(s: { size: number; mtimeMs: number }): string {
  return `${s.size}-${s.mtimeMs}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp files of `final` (`final.tmp-PID-RAND`) whose writing process is gone (killed before commit or abort). */
async function removeStaleTemps(final: string): Promise<number> {
  const dir = path.dirname(final);
  const stem = path.basename(final) + TMP_MARK;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (!name.startsWith(stem)) continue;
    const pid = Number(name.slice(stem.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      await fs.rm(path.join(dir, name), { force: true });
      n++;
    }
  }
  return n;
}

function wrap(e: unknown, uri: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new NotFoundError(`${uri}: no such file; check the path`);
  if (err.code === 'EISDIR') return new StoreError(`${uri}: is a folder, expected a file`);
  if (err.code === 'EACCES') return new StoreError(`${uri}: permission denied`);
  return err;
}

/** Fill `buf[0, length)` from `offset` of an open file; a short file is an error naming `uri`. */
async function readFully(
  fh: fs.FileHandle,
  buf: Uint8Array,
  length: number,
  offset: number,
  uri: string,
): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, Math.min(FILE_READ, length - got), offset + got);
    reportBytes(bytesRead);
    if (bytesRead === 0) throw new StoreError(`${uri}: unexpected end of file reading ${length} bytes at ${offset}`);
    got += bytesRead;
  }
}

/** Write all of `chunk` at `position`, or at the file's current position when none is given. */
async function writeFully(fh: fs.FileHandle, chunk: Uint8Array, position?: number): Promise<void> {
  for (let off = 0; off < chunk.byteLength;) {
    const at = position === undefined ? null : position + off;
    off += (await fh.write(chunk, off, chunk.byteLength - off, at)).bytesWritten;
  }
}

/** Errors of link(2) that mean this filesystem or mount cannot hard-link (the file is then copied). */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

function tempPath(final: string): string {
  return `${final}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
}

export class FileStore implements Store {
  readonly scheme = 'file' as const;

  async stat(uri: string): Promise<ObjectStat | null> {
    try {
      const s = await fs.stat(filePath(uri));
      return s.isFile() ? { uri, size: s.size, etag: fileEtag(s), modified: s.mtime } : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, uri);
    }
  }

  async read(uri: string, offset: number, length: number, expect?: string): Promise<Uint8Array> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(filePath(uri), 'r');
      if (expect !== undefined) {
        const now = fileEtag(await fh.stat());
        if (now !== expect)
          throw new InputChangedError(
            `${uri} changed since the run pinned it (size-mtime ${expect} -> ${now}); restore it or start a new run`,
          );
      }
      const buf = Buffer.allocUnsafe(length);
      await readFully(fh, buf, length, offset, uri);
      return buf;
    } catch (e) {
      throw wrap(e, uri);
    } finally {
      await fh?.close();
    }
  }

  async readAll(uri: string): Promise<Uint8Array> {
    try {
      return await fs.readFile(filePath(uri));
    } catch (e) {
      throw wrap(e, uri);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const root = filePath(prefix);
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw e;
      }
      for (const ent of entries) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) await walk(p);
        else if (ent.isFile()) out.push(pathToFileURL(p).href);
      }
    };
    await walk(root);
    return out.sort();
  }

  /**
   * A temp file beside `uri`'s path (stale temps of killed writers removed first): `publish` syncs it and renames
   * it onto the path, `discard` closes and removes it.
   */
  private async openTemp(
    uri: string,
  ): Promise<{ fh: fs.FileHandle; publish: () => Promise<void>; discard: () => Promise<void> }> {
    const final = filePath(uri);
    await fs.mkdir(path.dirname(final), { recursive: true });
    await removeStaleTemps(final);
    const tmp = tempPath(final);
    const fh = await fs.open(tmp, 'w');
    return {
      fh,
      publish: async () => {
        await fh.sync();
        await fh.close();
        await fs.rename(tmp, final);
      },
      discard: async () => {
        await fh.close().catch(() => undefined);
        await fs.rm(tmp, { force: true });
      },
    };
  }

  async writer(uri: string): Promise<ObjectWriter> {
    const { fh, publish, discard } = await this.openTemp(uri);
    const hash = createHash('sha256');
    let bytes = 0;
    let done = false;
    return {
      uri,
      async write(chunk) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        await writeFully(fh, chunk);
      },
      async commit(): Promise<Committed> {
        if (done) throw new StoreError(`${uri}: writer already closed`);
        done = true;
        await publish();
        return { uri, bytes, sha256: hash.digest('hex') };
      },
      async abort() {
        if (done) return;
        done = true;
        await discard();
      },
    };
  }

  /**
   * Bytes [offset, ...) of `stage`, written in place with positioned writes; the file is opened (created sparse,
   * never truncated) on the first write, so a writer that fails before writing leaves nothing.
   */
  async rangeWriter(stage: string, offset: number): Promise<ObjectWriter> {
    const p = filePath(stage);
    const hash = createHash('sha256');
    let fh: fs.FileHandle | undefined;
    let bytes = 0;
    let done = false;
    const open = async (): Promise<fs.FileHandle> => {
      if (fh) return fh;
      await fs.mkdir(path.dirname(p), { recursive: true });
      return (fh = await fs.open(p, fs.constants.O_RDWR | fs.constants.O_CREAT));
    };
    return {
      uri: stage,
      async write(chunk) {
        const h = await open().catch((e: unknown) => Promise.reject(wrap(e, stage)));
        hash.update(chunk);
        await writeFully(h, chunk, offset + bytes);
        bytes += chunk.byteLength;
      },
      async commit(): Promise<Committed> {
        if (done) throw new StoreError(`${stage}: writer already closed`);
        done = true;
        const h = await open();
        await h.sync();
        await h.close();
        return { uri: stage, offset, bytes, sha256: hash.digest('hex') };
      },
      async abort() {
        if (done) return;
        done = true;
        await fh?.close().catch(() => undefined);
      },
    };
  }

  /**
   * `head` written at the front of `stage`, synced, then hard-linked under a temp name beside `uri` and renamed
   * onto it: the output appears whole, and its bytes are neither read nor written again. Where the filesystem
   * cannot link (another mount, no hard links), the file is copied instead.
   */
  async publishStaged(uri: string, stage: string, head: Uint8Array, total: number): Promise<number> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(filePath(stage), 'r+');
      const size = (await fh.stat()).size;
      if (size !== total)
        throw new StoreError(
          `${stage}: the staged output holds ${size} bytes, ${total} expected; resume the run to rewrite its shards`,
        );
      await writeFully(fh, head, 0);
      await fh.sync();
    } catch (e) {
      throw wrap(e, stage);
    } finally {
      await fh?.close().catch(() => undefined);
    }
    const final = filePath(uri);
    // a retried publish whose link already took: renaming a link onto its own file would leave the temp name
    const [staged, there] = await Promise.all([fs.stat(filePath(stage)), fs.stat(final).catch(() => undefined)]);
    if (there && there.ino === staged.ino && there.dev === staged.dev) return total;
    await fs.mkdir(path.dirname(final), { recursive: true });
    await removeStaleTemps(final);
    const tmp = tempPath(final);
    try {
      await fs.link(filePath(stage), tmp).catch(async (e: NodeJS.ErrnoException) => {
        if (!NO_LINK.has(e.code ?? '')) throw e;
        await fs.copyFile(filePath(stage), tmp);
        const copy = await fs.open(tmp, 'r+');
        await copy.sync().finally(() => copy.close());
      });
      await fs.rename(tmp, final);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw wrap(e, uri);
    }
    return total;
  }

  /**
   * Head, then each segment copied in 16 MiB ranges into a temp file, renamed into place at the end. Two buffers
   * take turns, so the next range is read while the last one is written; nothing is hashed (a composed file's
   * digest comes from its parts' sha256).
   */
  async compose(
    uri: string,
    head: Uint8Array,
    segments: readonly Segment[],
    opts: ComposeOptions = {},
  ): Promise<number> {
    const total = head.byteLength + segments.reduce((a, s) => a + s.length, 0);
    const { fh, publish, discard } = await this.openTemp(uri);
    const buffers = [Buffer.allocUnsafe(COPY_CHUNK), Buffer.allocUnsafe(COPY_CHUNK)];
    const ranges = segments.flatMap((s) => {
      const out: { uri: string; offset: number; length: number }[] = [];
      for (let off = 0; off < s.length; off += COPY_CHUNK)
        out.push({ uri: s.uri, offset: s.offset + off, length: Math.min(COPY_CHUNK, s.length - off) });
      return out;
    });
    let source: { uri: string; fh: fs.FileHandle } | undefined;
    const readRange = async (k: number): Promise<Uint8Array> => {
      const r = ranges[k];
      try {
        if (source?.uri !== r.uri) {
          await source?.fh.close();
          source = undefined;
          source = { uri: r.uri, fh: await fs.open(filePath(r.uri), 'r') };
        }
        const buf = buffers[k % 2];
        await readFully(source.fh, buf, r.length, r.offset, r.uri);
        return buf.subarray(0, r.length);
      } catch (e) {
        throw wrap(e, r.uri);
      }
    };
    let next: Promise<Uint8Array> | undefined;
    try {
      await writeFully(fh, head);
      let done = head.byteLength;
      next = ranges.length ? readRange(0) : undefined;
      for (let k = 0; k < ranges.length; k++) {
        const chunk = await next!;
        // the other buffer is free: its range was written before this one was read
        next = k + 1 < ranges.length ? readRange(k + 1) : undefined;
        next?.catch(() => undefined); // handled: a failed read is thrown when its turn comes (or after a failed write)
        await writeFully(fh, chunk);
        done += chunk.byteLength;
        await opts.progress?.(done, total);
      }
      await publish();
    } catch (e) {
      await next?.catch(() => undefined);
      await discard();
      throw e;
    } finally {
      await source?.fh.close().catch(() => undefined);
    }
    return total;
  }

  /** Temp files left under a folder by writers that were killed. */
  async abortUploads(prefix: string): Promise<number> {
    let n = 0;
    for (const uri of await this.list(prefix)) {
      const p = filePath(uri);
      const i = p.lastIndexOf(TMP_MARK);
      if (i > 0) n += await removeStaleTemps(p.slice(0, i));
    }
    return n;
  }

  async delete(uri: string): Promise<void> {
    await fs.rm(filePath(uri), { force: true });
  }
}
