/** file:// store: positioned reads, temp-file-then-rename publishes. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Committed, NotFoundError, ObjectStat, ObjectWriter, Store, StoreError } from './types';
import { filePath } from './uri';

function wrap(e: unknown, uri: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new NotFoundError(`${uri}: no such file; check the path`);
  if (err.code === 'EISDIR') return new StoreError(`${uri}: is a folder, expected a file`);
  if (err.code === 'EACCES') return new StoreError(`${uri}: permission denied`);
  return err;
}

export class FileStore implements Store {
  readonly scheme = 'file' as const;

  async stat(uri: string): Promise<ObjectStat | null> {
    try {
      const s = await fs.stat(filePath(uri));
      return s.isFile() ? { uri, size: s.size, etag: `${s.size}-${s.mtimeMs}`, modified: s.mtime } : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, uri);
    }
  }

  async read(uri: string, offset: number, length: number): Promise<Uint8Array> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(filePath(uri), 'r');
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0)
          throw new StoreError(`${uri}: unexpected end of file reading ${length} bytes at ${offset}`);
        got += bytesRead;
      }
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

  async writer(uri: string): Promise<ObjectWriter> {
    const final = filePath(uri);
    await fs.mkdir(path.dirname(final), { recursive: true });
    const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await fs.open(tmp, 'w');
    const hash = createHash('sha256');
    let bytes = 0;
    let done = false;
    return {
      uri,
      async write(chunk) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        let off = 0;
        while (off < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
          off += bytesWritten;
        }
      },
      async commit(): Promise<Committed> {
        if (done) throw new StoreError(`${uri}: writer already closed`);
        done = true;
        await fh.sync();
        await fh.close();
        await fs.rename(tmp, final);
        return { uri, bytes, sha256: hash.digest('hex') };
      },
      async abort() {
        if (done) return;
        done = true;
        await fh.close().catch(() => undefined);
        await fs.rm(tmp, { force: true });
      },
    };
  }

  async delete(uri: string): Promise<void> {
    await fs.rm(filePath(uri), { force: true });
  }
}
