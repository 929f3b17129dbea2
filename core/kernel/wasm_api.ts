/**
 * The few WebAssembly JS API classes the kernel uses, typed here (the project's TypeScript libs, ES2022 and
 * Node's, do not declare the WebAssembly namespace).
 */

/** A compiled module (opaque; it can be sent to worker threads). */
export interface WasmModule {
  readonly __wasmModule: unique symbol;
}

/** A shared linear memory: its buffer is a SharedArrayBuffer (a new object after each grow). */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
