/** URI helpers: plain paths become file:// URIs; s3://bucket/key is split into its parts. */
import * as path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

export function normalizeUri(uriOrPath: string, cwd = process.cwd()): string {
  if (uriOrPath.startsWith('s3://')) return uriOrPath;
  if (uriOrPath.startsWith('file://')) return pathToFileURL(fileURLToPath(uriOrPath)).href;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uriOrPath)) {
    throw new Error(`unsupported URI scheme in '${uriOrPath}': use file://, s3:// or a plain path`);
  }
  return pathToFileURL(path.resolve(cwd, uriOrPath)).href;
}

/** Local path of a file:// URI (a plain path is returned as it is). */
export function filePath(uri: string): string {
  return uri.startsWith('file://') ? fileURLToPath(uri) : path.resolve(uri);
}

export function parseS3(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: '${uri}'`);
  return { bucket: m[1], key: m[2] };
}

/** Join a relative name onto a URI treated as a folder. */
export function joinUri(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, '');
  for (const p of parts) out += '/' + p.replace(/^\/+/, '');
  return out;
}

export function dirnameUri(uri: string): string {
  const i = uri.replace(/\/+$/, '').lastIndexOf('/');
  return i < 0 ? uri : uri.slice(0, i);
}

export function basenameUri(uri: string): string {
  const s = uri.replace(/\/+$/, '');
  return s.slice(s.lastIndexOf('/') + 1);
}
