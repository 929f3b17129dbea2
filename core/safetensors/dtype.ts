/** Safetensors dtypes mergeflow reads and writes, and conversions to and from float32. */

export const DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;
export type DType = (typeof DTYPES)[number];

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Float dtypes that can hold model weights and take part in merges. */
export const FLOAT_DTYPES: readonly DType[] = ['F64', 'F32', 'F16', 'BF16'];

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function isFloatDType(d: DType): boolean {
  return FLOAT_DTYPES.includes(d);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half -> float32 value. */
export function halfToFloat(h: number): number {
  const s = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) {
    if (m === 0) {
      u32[0] = s;
      return f32[0];
    }
    // subnormal half: m * 2^-24
    const v = m * 5.960464477539063e-8;
    return s ? -v : v;
  }
  if (e === 0x1f) {
    u32[0] = s | 0x7f800000 | (m << 13);
    return f32[0];
  }
  u32[0] = s | ((e + 112) << 23) | (m << 13);
  return f32[0];
}

/** float -> IEEE half bits, round to nearest even (as numpy / torch do). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // may carry into exponent: correct (-> inf at top)
  return sign | r;
}

export function bf16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** float -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function floatToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float32 value of every IEEE half bit pattern: F16 decodes by table lookup. */
let halfTable: Float32Array | undefined;
function halfValues(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** A typed view of `bytes` when its offset is aligned for the element size (and the host is little-endian). */
function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBufferLike, o: number, n: number) => T): T | null {
  if (!LITTLE_ENDIAN || bytes.byteOffset % size !== 0) return null;
  return make(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
}

function u16s(bytes: Uint8Array): Uint16Array {
  return (
    view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)) ??
    new Uint16Array(Uint8Array.from(bytes).buffer, 0, bytes.byteLength / 2)
  );
}

/**
 * Decode a little-endian span of a float dtype into out[0..n) (n = bytes / element size). Typed-array loops,
 * no per-element DataView calls; F32 is a plain copy.
 */
export function decodeInto(bytes: Uint8Array, dtype: DType, out: Float32Array): void {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes);
      return;
    case 'F64': {
      const f64 =
        view(bytes, 8, (b, o, k) => new Float64Array(b, o, k)) ?? new Float64Array(Uint8Array.from(bytes).buffer);
      for (let i = 0; i < n; i++) out[i] = f64[i];
      return;
    }
    case 'F16': {
      const h = u16s(bytes);
      const table = halfValues();
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return;
    }
    case 'BF16': {
      const h = u16s(bytes);
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) o32[i] = h[i] << 16;
      return;
    }
    default:
      throw new Error(`dtype ${dtype} is not a float dtype; only F64, F32, F16 and BF16 tensors can be merged`);
  }
}

/**
 * Float32 values of a span without copying when it is F32 and 4-byte aligned; otherwise decoded into
 * `scratch` (which must hold the span's element count).
 */
export function float32Of(bytes: Uint8Array, dtype: DType, scratch: Float32Array): Float32Array {
  if (dtype === 'F32') {
    const v = view(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    if (v) return v;
  }
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = scratch.subarray(0, n);
  decodeInto(bytes, dtype, out);
  return out;
}

/** Decode a little-endian tensor byte span into float32 values (float dtypes only). */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const out = new Float32Array(bytes.byteLength / DTYPE_BYTES[dtype]);
  decodeInto(bytes, dtype, out);
  return out;
}

/**
 * Encode values[0..n) as a little-endian span of a float dtype into out (n × element size bytes). F16 and
 * BF16 round to nearest even; F32 is a plain copy.
 */
export function encodeInto(values: Float32Array, dtype: DType, out: Uint8Array): void {
  const n = values.length;
  switch (dtype) {
    case 'F32':
      out.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
      return;
    case 'F64': {
      const f64 = view(out, 8, (b, o) => new Float64Array(b, o, n));
      if (f64) for (let i = 0; i < n; i++) f64[i] = values[i];
      else out.set(new Uint8Array(Float64Array.from(values).buffer));
      return;
    }
    case 'F16':
    case 'BF16': {
      const direct = view(out, 2, (b, o) => new Uint16Array(b, o, n));
      const h = direct ?? new Uint16Array(n);
      if (dtype === 'F16') for (let i = 0; i < n; i++) h[i] = floatToHalf(values[i]);
      else {
        const u = new Uint32Array(values.buffer, values.byteOffset, n);
        for (let i = 0; i < n; i++) {
          const x = u[i];
          h[i] =
            (x & 0x7f800000) === 0x7f800000 && x & 0x7fffff
              ? ((x >>> 16) | 0x40) & 0xffff
              : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
        }
      }
      if (!direct) out.set(new Uint8Array(h.buffer));
      return;
    }
    default:
      throw new Error(`cannot write float values as ${dtype}; choose F64, F32, F16 or BF16`);
  }
}

/** Encode float32 values into a little-endian byte span of the given float dtype. */
export function fromFloat32(values: Float32Array, dtype: DType): Uint8Array {
  if (!isFloatDType(dtype)) throw new Error(`cannot write float values as ${dtype}; choose F64, F32, F16 or BF16`);
  const out = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  encodeInto(values, dtype, out);
  return out;
}

/** Decode F64 (exactly) or F32 (widened) bytes into float64 values; for small state tensors such as λ. */
export function toFloat64(bytes: Uint8Array, dtype: DType): Float64Array {
  if (dtype === 'F32') return Float64Array.from(toFloat32(bytes, 'F32'));
  if (dtype !== 'F64') throw new Error(`dtype ${dtype} cannot be read as float64 values; expected F64 or F32`);
  const out = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Encode float64 values as little-endian F64 bytes. */
export function fromFloat64(values: Float64Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}
