/**
 * The WebAssembly SIMD linear kernel (linear.wat, compiled into linear_wasm_bytes.ts): θ0 + Σk c_k τk, or
 * Σk c_k θk without a base, over float32 arrays in a shared WebAssembly memory, with the same bytes as the
 * JavaScript kernel (core/merge/coefficients.ts) and the NaN/Inf check folded into its loop.
 *
 * LinearWasm runs on addresses (any thread that has the memory); ArenaLinear runs on Float32Arrays, using those
 * that live in its arena in place and copying the others in (and the output out).
 */
import { KernelArena } from './arena';
import { allFinite } from './finite';
import { LINEAR_WASM } from './linear_wasm_bytes';
import { Wasm, WasmMemory, WasmModule } from './wasm_api';

type LinearFn = (
  out: number,
  base: number,
  hasBase: number,
  models: number,
  weights: number,
  weighted: number,
  K: number,
  lo: number,
  hi: number,
  scale: number,
) => number;

let compiled: WasmModule | null | undefined;

/** The compiled kernel, or undefined where this runtime lacks WebAssembly SIMD or shared memory. */
export function linearWasmModule(): WasmModule | undefined {
  if (compiled === undefined) {
    try {
      const module = new Wasm.Module(Buffer.from(LINEAR_WASM, 'base64'));
      // instantiating over a shared memory proves the runtime has both features
      new Wasm.Instance(module, { env: { memory: new Wasm.Memory({ initial: 1, maximum: 1, shared: true }) } });
      compiled = module;
    } catch {
      compiled = null;
    }
  }
  return compiled ?? undefined;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Bytes of a call's table for K models: K int32 addresses, then K float64 weights. */
export function tableBytes(K: number): number {
  return align8(K * 4) + K * 8;
}

/** Where one call's arrays are: byte addresses of n float32 values each (base undefined: no base). */
export interface LinearAddresses {
  out: number;
  base: number | undefined;
  models: readonly number[];
  /** A table of tableBytes(K) bytes this call may overwrite (one per thread). */
  table: number;
}

/** The kernel instantiated over one memory; one instance per thread. */
export class LinearWasm {
  private readonly fn: LinearFn;

  constructor(
    readonly memory: WasmMemory,
    module: WasmModule | undefined = linearWasmModule(),
  ) {
    if (!module) throw new Error('internal: the WebAssembly kernel is not available in this runtime');
    const instance = new Wasm.Instance(module, { env: { memory } });
    this.fn = instance.exports.linear as unknown as LinearFn;
  }

  /**
   * The memory's buffer, at least `end` bytes long. A shared memory grown by another thread (the arena's owner)
   * can still show this thread its older, shorter buffer object; grow(0) refreshes it to the current size.
   */
  private currentBuffer(end: number): ArrayBufferLike {
    let buf = this.memory.buffer;
    if (buf.byteLength < end) {
      this.memory.grow(0);
      buf = this.memory.buffer;
    }
    if (buf.byteLength < end)
      throw new Error(`internal: WebAssembly kernel address ${end} beyond its memory (${buf.byteLength} bytes)`);
    return buf;
  }

  /**
   * out = b + scale · Σk w_k (m_k − b) over n elements; uniform coefficients c give w = 1 and scale = c, others
   * w = c and scale = 1, as in the JavaScript kernel. Returns whether every input value was finite.
   */
  run(a: LinearAddresses, coefficients: readonly number[], n: number): boolean {
    const K = a.models.length;
    if (coefficients.length !== K) throw new Error(`linear merge: ${coefficients.length} coefficients for ${K} models`);
    const uniform = coefficients.every((c) => c === coefficients[0]);
    const scale = uniform ? (coefficients[0] ?? 0) : 1;
    const buf = this.currentBuffer(
      Math.max(
        a.table + align8(K * 4) + 8 * K,
        (a.base ?? 0) + 4 * n,
        a.out + 4 * n,
        ...a.models.map((m) => m + 4 * n),
      ),
    );
    const addrs = new Int32Array(buf, a.table, K);
    const weights = new Float64Array(buf, a.table + align8(K * 4), K);
    for (let k = 0; k < K; k++) {
      addrs[k] = a.models[k];
      weights[k] = uniform ? 1 : coefficients[k];
    }
    const folded = this.fn(
      a.out,
      a.base ?? 0,
      a.base === undefined ? 0 : 1,
      a.table,
      a.table + align8(K * 4),
      uniform ? 0 : 1,
      K,
      0,
      n,
      scale,
    );
    // the loop's check sees the base only through the models; and a float32 overflow of a sum of finite values
    // also reads as non-finite, so a failed check is settled exactly
    if (folded === 1 && K > 0) return true;
    const view = (at: number) => new Float32Array(buf, at, n);
    return (a.base === undefined || allFinite(view(a.base))) && a.models.every((m) => allFinite(view(m)));
  }
}

/** The kernel on Float32Arrays, for the thread that owns the arena. */
export class ArenaLinear {
  readonly kernel: LinearWasm;
  private table = { at: 0, K: -1 };
  private stage = { at: 0, bytes: 0 };

  constructor(readonly arena: KernelArena) {
    this.kernel = new LinearWasm(arena.memory);
  }

  /** A call table for K models on this thread (reused while K does not grow). */
  tableFor(K: number): number {
    if (this.table.K < K) this.table = { at: this.arena.alloc(tableBytes(K)), K };
    return this.table.at;
  }

  /**
   * out = θ0 + Σk c_k τk (Σk c_k θk when base is undefined) over out.length elements. Arrays in the arena are
   * used in place; any other is copied into a staging area first (the output copied back). Returns whether
   * every input value was finite.
   */
  merge(
    out: Float32Array,
    base: Float32Array | undefined,
    models: readonly Float32Array[],
    coefficients: readonly number[],
  ): boolean {
    const n = out.length;
    const arrays = [out, ...(base ? [base] : []), ...models];
    const outside = arrays.filter((v) => this.arena.address(v) === undefined).length;
    if (outside * n * 4 > this.stage.bytes)
      this.stage = { at: this.arena.alloc(outside * n * 4), bytes: outside * n * 4 };
    let next = this.stage.at;
    const place = (v: Float32Array, copyIn: boolean): number => {
      const at = this.arena.address(v);
      if (at !== undefined) return at;
      const staged = next;
      next += n * 4;
      if (copyIn) new Float32Array(this.arena.memory.buffer, staged, n).set(v.subarray(0, n));
      return staged;
    };
    const a: LinearAddresses = {
      out: place(out, false),
      base: base ? place(base, true) : undefined,
      models: models.map((m) => place(m, true)),
      table: this.tableFor(models.length),
    };
    const finite = this.kernel.run(a, coefficients, n);
    if (this.arena.address(out) === undefined) out.set(new Float32Array(this.arena.memory.buffer, a.out, n));
    return finite;
  }
}
