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

/** Decode a little-endian tensor byte span into float32 values (float dtypes only). */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) o32[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    default:
      throw new Error(`dtype ${dtype} is not a float dtype; only F64, F32, F16 and BF16 tensors can be merged`);
  }
}

/** Encode float32 values into a little-endian byte span of the given float dtype. */
export function fromFloat32(values: Float32Array, dtype: DType): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'F64': {
      const out = new Uint8Array(n * 8);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat64(i * 8, values[i], true);
      return out;
    }
    case 'F16': {
      const out = new Uint8Array(n * 2);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToHalf(values[i]), true);
      return out;
    }
    case 'BF16': {
      const out = new Uint8Array(n * 2);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToBf16(values[i]), true);
      return out;
    }
    default:
      throw new Error(`cannot write float values as ${dtype}; choose F64, F32, F16 or BF16`);
  }
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
