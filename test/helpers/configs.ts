/** Merge configs the tests build over a list of checkpoint URIs (the first is the base). */
import * as path from 'node:path';
import { validateConfig } from '../../core/config/load';
import type { MergeConfig } from '../../core/config/schema';

/** A data-free merge of uris[1..] onto uris[0] as models m1, m2, …, written to dir/out in 2 shards. */
export function listedMergeConfig(
  dir: string,
  uris: readonly string[],
  method: string,
  parameters: object,
  out: string,
): MergeConfig {
  return validateConfig(
    {
      method,
      base: uris[0],
      models: uris.slice(1).map((u, k) => ({ name: `m${k + 1}`, checkpoint: u })),
      parameters,
      output: path.join(dir, out),
      shards: 2,
    },
    'test',
  );
}

/** The data-free methods and parameters the byte-equality tests run over. */
export const METHOD_CASES = [
  ['task_arithmetic', { scaling: 0.3 }],
  ['weight_average', {}],
  ['ties', { keep: 0.2, scaling: 0.5 }],
  ['ties', { keep: 0.5, merge: 'mean' }],
] as const;
