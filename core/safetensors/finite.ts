/**
 * NaN and ±Inf in weights are refused, naming the file and the tensor. A single NaN in any model turns every
 * merged entry of that tensor into NaN (averages, task vectors, TIES' magnitudes and signs), so the output would
 * be silently broken; refusing costs one pass over values already in memory.
 */
import { SafetensorsError } from './header';

export function checkFinite(values: Float32Array, uri: string, tensor: string): Float32Array {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // v - v is 0 for every finite value and NaN for NaN and ±Inf
    if (v - v !== 0) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad) {
    const v = values[first];
    throw new SafetensorsError(
      `${uri}: tensor '${tensor}' holds ${bad} non-finite value${bad > 1 ? 's' : ''} (first: ${v} at element ${first}); repair or drop this checkpoint`,
    );
  }
  return values;
}
