/**
 * A kernel thread of kernel_pool.ts: merges the element range it is sent of a chunk that lives in shared
 * memory, writes its part of the output there, and answers whether the inputs were finite there (or the
 * error's message). With the WebAssembly kernel, the thread instantiates the module over the pool's arena
 * and is sent addresses in it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LinearAddresses, LinearWasm } from '../kernel/linear_wasm';
import type { WasmMemory, WasmModule } from '../kernel/wasm_api';
import { KernelSpec, rangeMerge } from './kernel_range';

/** A Float32Array in shared memory, as it travels: buffer, byte offset, length. */
export type SharedView = [SharedArrayBuffer, number, number];

export type RangeReply = { finite: boolean } | { error: string };

/** What a thread starts with: the kernel spec and, for the WebAssembly kernel, the module and arena memory. */
export interface ThreadSetup {
  spec: KernelSpec;
  wasm?: { module: WasmModule; memory: WasmMemory };
}

export type RangeMessage =
  | {
      tensor: string;
      /** out, acc, base, then the models. */
      views: SharedView[];
      coefs: number[];
      lo: number;
      hi: number;
    }
  | {
      tensor: string;
      /** Addresses of this range's first element in every array, and this thread's call table. */
      wasm: LinearAddresses;
      coefs: number[];
      n: number;
    };

const setup = workerData as ThreadSetup;
const merge = rangeMerge(setup.spec);
const kernel = setup.wasm ? new LinearWasm(setup.wasm.memory, setup.wasm.module) : undefined;

parentPort?.on('message', (m: RangeMessage) => {
  try {
    let finite: boolean;
    if ('wasm' in m) {
      if (!kernel) throw new Error('internal: a WebAssembly range sent to a thread without the module');
      finite = kernel.run(m.wasm, m.coefs, m.n);
    } else {
      const [out, acc, base, ...models] = m.views.map(([b, o, n]) => new Float32Array(b, o, n));
      finite = merge(m.tensor, { out, acc, base, models }, m.coefs, m.lo, m.hi);
    }
    parentPort?.postMessage({ finite } satisfies RangeReply);
  } catch (e) {
    parentPort?.postMessage({ error: String((e as Error).message ?? e) } satisfies RangeReply);
  }
});
