/** Which implementation runs the linear kernel: MERGEFLOW_KERNEL=wasm|js, default wasm where it loads. */
import { linearWasmModule } from './linear_wasm';

export type LinearKernel = 'wasm' | 'js';

export function linearKernel(): LinearKernel {
  const v = process.env.MERGEFLOW_KERNEL;
  if (v === undefined || v === '') return linearWasmModule() ? 'wasm' : 'js';
  if (v === 'js') return 'js';
  if (v === 'wasm') {
    if (!linearWasmModule())
      throw new Error(
        'MERGEFLOW_KERNEL=wasm, but this Node has no WebAssembly SIMD with shared memory; set MERGEFLOW_KERNEL=js or unset it',
      );
    return 'wasm';
  }
  throw new Error(`MERGEFLOW_KERNEL='${v}' is not a kernel; set it to wasm or js, or unset it`);
}
