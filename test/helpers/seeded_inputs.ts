/** Seeded test inputs for the merge kernels: reproducible float values, and checkpoints made of them. */
import * as path from 'node:path';
import { DType, fromFloat32, numel, writeTensors } from '../../core/safetensors';
import { fileUri } from './env';

/** n values in [−spread/2, spread/2) from a linear congruential stream seeded by `seed`. */
export function seededValues(n: number, seed: number, spread = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from(
    { length: n },
    () => spread * ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5),
  );
}

/**
 * `count` checkpoints in `dir` (base.safetensors, then m1, m2, …) holding `shapes` in `dtype`; tensor i of
 * checkpoint k is seededValues(numel, 10k + i). Returns their file:// URIs, base first.
 */
export async function writeSeededInputs(
  dir: string,
  shapes: Record<string, number[]>,
  count: number,
  dtype: DType,
): Promise<string[]> {
  const uris: string[] = [];
  for (let k = 0; k < count; k++) {
    const uri = fileUri(path.join(dir, k === 0 ? 'base.safetensors' : `m${k}.safetensors`));
    await writeTensors(
      uri,
      Object.entries(shapes).map(([name, shape], i) => ({
        name,
        dtype,
        shape,
        data: fromFloat32(seededValues(numel(shape), 10 * k + i), dtype),
      })),
    );
    uris.push(uri);
  }
  return uris;
}
