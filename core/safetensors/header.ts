/** Safetensors header: parsing and validation. Every violation names the file and the tensor. */
import { DTYPE_BYTES, DType, DTYPES, isDType } from './dtype';

/** Strict UTF-8: a header with invalid bytes is refused rather than read with replacement characters. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the start of the data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Tensors in data order (ascending begin). */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Absolute file offset of the data section. */
  dataStart: number;
}

/** Largest header we accept (the reference implementation refuses headers over 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function headerLength(first8: Uint8Array, source: string, fileSize: number): number {
  if (first8.byteLength < 8 || fileSize < 8) {
    throw new SafetensorsError(
      `${source}: file is ${fileSize} bytes, too short to be safetensors (needs an 8-byte header length)`,
    );
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `${source}: header length ${n} is larger than ${MAX_HEADER_BYTES} bytes; not a safetensors file`,
    );
  }
  if (8n + n > BigInt(fileSize)) {
    throw new SafetensorsError(
      `${source}: header length ${n} runs past the end of the ${fileSize}-byte file; the file is truncated or not safetensors`,
    );
  }
  return Number(n);
}

export function parseHeader(json: Uint8Array, source: string, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + json.byteLength;
  let text: string;
  try {
    text = utf8.decode(json);
  } catch {
    throw new SafetensorsError(`${source}: header is not valid UTF-8; the file is corrupt or not safetensors`);
  }
  let raw: unknown;
  try {
    // JSON.parse defines keys such as "__proto__" as own properties, so every tensor name survives
    raw = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(`${source}: header must be a JSON object`);
  }
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'string')) {
        throw new SafetensorsError(`${source}: __metadata__ must map strings to strings`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    tensors.push(parseEntry(name, v, source));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataSize = fileSize - dataStart;
  let expected = 0;
  for (const t of tensors) {
    if (t.begin < expected) {
      throw new SafetensorsError(
        `${source}: tensor '${t.name}' bytes [${t.begin}, ${t.end}) overlap the previous tensor`,
      );
    }
    if (t.begin > expected) {
      throw new SafetensorsError(
        `${source}: tensor '${t.name}' starts at byte ${t.begin} but the previous one ends at ${expected} (holes are not allowed)`,
      );
    }
    if (t.end > dataSize) {
      throw new SafetensorsError(
        `${source}: tensor '${t.name}' ends at data byte ${t.end} but the data section holds ${dataSize} bytes; the file is truncated`,
      );
    }
    expected = t.end;
  }
  if (expected !== dataSize) {
    throw new SafetensorsError(
      `${source}: ${dataSize - expected} trailing bytes after the last tensor; the header does not describe the file`,
    );
  }
  return { tensors, metadata, dataStart };
}

function parseEntry(name: string, v: unknown, source: string): TensorInfo {
  const where = `${source}: tensor '${name}'`;
  if (typeof v !== 'object' || v === null) throw new SafetensorsError(`${where}: entry must be an object`);
  const e = v as Record<string, unknown>;
  if (typeof e.dtype !== 'string' || !isDType(e.dtype)) {
    throw new SafetensorsError(
      `${where}: unsupported dtype ${JSON.stringify(e.dtype)}; mergeflow reads ${DTYPES.join(', ')}`,
    );
  }
  if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new SafetensorsError(`${where}: shape must be a list of non-negative integers`);
  }
  const off = e.data_offsets;
  if (
    !Array.isArray(off) ||
    off.length !== 2 ||
    off.some((d) => !Number.isSafeInteger(d) || d < 0) ||
    off[1] < off[0]
  ) {
    throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end`);
  }
  const shape = e.shape as number[];
  const want = numel(shape) * DTYPE_BYTES[e.dtype];
  if (off[1] - off[0] !== want) {
    throw new SafetensorsError(
      `${where}: shape [${shape.join(', ')}] x ${e.dtype} needs ${want} bytes but data_offsets span ${off[1] - off[0]}`,
    );
  }
  return { name, dtype: e.dtype, shape, begin: off[0], end: off[1] };
}

/** Serialize a header for the given tensors laid out contiguously in the given order; padded to 8 bytes. */
export function buildHeader(
  specs: readonly { name: string; dtype: DType; shape: readonly number[] }[],
  metadata?: Record<string, string>,
): { bytes: Uint8Array; tensors: TensorInfo[] } {
  // no prototype: a tensor named "__proto__" is an ordinary key here (on {} it would set the prototype and vanish)
  const obj: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length) obj.__metadata__ = metadata;
  const tensors: TensorInfo[] = [];
  let off = 0;
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new SafetensorsError(`tensor '${s.name}' listed twice`);
    seen.add(s.name);
    const n = numel(s.shape) * DTYPE_BYTES[s.dtype];
    obj[s.name] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [off, off + n] };
    tensors.push({ name: s.name, dtype: s.dtype, shape: [...s.shape], begin: off, end: off + n });
    off += n;
  }
  let json = Buffer.from(JSON.stringify(obj), 'utf8');
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const bytes = new Uint8Array(8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return { bytes, tensors };
}
