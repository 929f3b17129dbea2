/**
 * BLAKE3, the hash a merge computes of every input byte it reads (core/pipeline/input_digest.ts). It is
 * cryptographic like sha256 and about 2.4× faster here (4.0 against 1.67 GB/s on one core of this machine's
 * EPYC, with SHA-NI for sha256), which is what hashing while merging costs a cold merge.
 *
 * Two engines give the same digests: `native` (@napi-rs/blake-hash's prebuilt binding, SIMD) and `wasm`
 * (hash-wasm, about 0.7 GB/s) where the native one does not load. The binding is an optional dependency for
 * linux-x64 (glibc), the one platform whose package the registry here serves; elsewhere npm skips it and the
 * WebAssembly engine hashes. MERGEFLOW_HASH=native|wasm picks one; unset, native where it loads.
 */
export type HashEngine = 'native' | 'wasm';

/** An incremental hash: update with bytes, then one digest (lower-case hex). */
export interface StreamingHash {
  update(bytes: Uint8Array): void;
  digest(): string;
}

interface NativeHasher {
  update(input: Buffer): unknown;
  digest(format?: string): string;
}
type NativeModule = { Blake3Hasher: new () => NativeHasher };

let native: NativeModule | null | undefined;

function nativeModule(): NativeModule | null {
  if (native === undefined) {
    try {
      native =
        process.platform === 'linux' && process.arch === 'x64'
          ? (require('@napi-rs/blake-hash-linux-x64-gnu') as NativeModule)
          : null;
    } catch {
      native = null;
    }
  }
  return native;
}

/** The engine MERGEFLOW_HASH asks for, or the fastest that loads. */
export function hashEngine(env: NodeJS.ProcessEnv = process.env): HashEngine {
  const v = env.MERGEFLOW_HASH;
  if (v === undefined || v === '') return nativeModule() ? 'native' : 'wasm';
  if (v === 'wasm') return 'wasm';
  if (v === 'native') {
    if (!nativeModule())
      throw new Error(
        'MERGEFLOW_HASH=native, but no native BLAKE3 binding is installed for this platform; set MERGEFLOW_HASH=wasm or unset it',
      );
    return 'native';
  }
  throw new Error(`MERGEFLOW_HASH='${v}' is not a hash engine; set it to native or wasm, or unset it`);
}

/** Makes BLAKE3 hashes with the chosen engine (a WebAssembly instance loads asynchronously, hence a promise). */
export function blake3Maker(engine: HashEngine = hashEngine()): () => Promise<StreamingHash> {
  if (engine === 'native') {
    const { Blake3Hasher } = nativeModule()!;
    return async () => {
      const h = new Blake3Hasher();
      return {
        update: (b) => void h.update(Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
        digest: () => h.digest('hex'),
      };
    };
  }
  return async () => {
    const { createBLAKE3 } = await import('hash-wasm');
    const h = await createBLAKE3();
    return {
      update: (b) => void h.update(b),
      digest: () => h.digest('hex'),
    };
  };
}

/** BLAKE3 of one buffer (hex), with the chosen engine. */
export async function blake3Hex(bytes: Uint8Array, engine: HashEngine = hashEngine()): Promise<string> {
  const h = await blake3Maker(engine)();
  h.update(bytes);
  return h.digest();
}
