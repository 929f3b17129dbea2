/**
 * One shared WebAssembly memory per shard merge, from which the read buffers, decode scratch and output chunks
 * are cut, so the WebAssembly kernel reads the chunks where they were read to (no copy in) and writes the output
 * where the writer takes it. The kernel threads instantiate the kernel over the same memory. Allocation is a
 * bump pointer on the thread that owns the arena; nothing is freed before the whole arena is dropped.
 */
import { Wasm, WasmMemory } from './wasm_api';

const PAGE = 65536;
/** wasm32's limit (4 GiB); only the pages grown into are committed. */
const MAX_PAGES = 65536;

export class KernelArena {
  readonly memory: WasmMemory;
  private top = 0;
  /** Every buffer object the memory has shown (growing it gives a new one; views over old ones stay valid). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor(initialBytes = PAGE) {
    this.memory = new Wasm.Memory({
      initial: Math.max(1, Math.ceil(initialBytes / PAGE)),
      maximum: MAX_PAGES,
      shared: true,
    });
  }

  /** Reserve `bytes` (16-byte aligned); returns the address. */
  alloc(bytes: number): number {
    const at = Math.ceil(this.top / 16) * 16;
    const end = at + Math.max(0, bytes);
    const size = this.memory.buffer.byteLength;
    if (end > size) {
      if (end > MAX_PAGES * PAGE) throw new Error(`kernel arena: ${end} bytes exceed WebAssembly's 4 GiB memory`);
      this.memory.grow(Math.ceil((end - size) / PAGE));
    }
    this.top = end;
    return at;
  }

  private view(): SharedArrayBuffer {
    const b = this.memory.buffer;
    this.buffers.add(b);
    return b;
  }

  /** A new Uint8Array of `bytes` in the arena (zeroed: memory is only ever grown). */
  bytes(bytes: number): Uint8Array {
    const at = this.alloc(bytes);
    return new Uint8Array(this.view(), at, bytes);
  }

  /** A new Float32Array of n elements in the arena. */
  f32(n: number): Float32Array {
    const at = this.alloc(n * 4);
    return new Float32Array(this.view(), at, n);
  }

  /** The address of a view into this arena, or undefined for a view of any other buffer. */
  address(v: ArrayBufferView): number | undefined {
    return this.buffers.has(v.buffer) || v.buffer === this.memory.buffer ? v.byteOffset : undefined;
  }
}
