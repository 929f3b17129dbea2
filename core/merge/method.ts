/** The contract each data-free merge method implements. Pure: no I/O, no Temporal. */
import type { z } from 'zod';

/** Whole-model statistics some methods need before the per-tensor merge (computed by streaming passes). */
export interface GlobalStats {
  /** Per-model magnitude threshold for TIES trimming (|τk| >= t_k is kept). */
  thresholds?: number[];
  /** sign(Σ over all entries of the elected sign), for entries whose summed trimmed value is exactly 0. */
  majoritySign?: number;
}

export type GlobalPass = 'magnitude' | 'sign';

export interface TensorMergeInput<P> {
  name: string;
  base: Float32Array;
  models: readonly Float32Array[];
  params: P;
  global: GlobalStats;
}

export interface MergeMethod<P> {
  name: string;
  summary: string;
  params: z.ZodType<P>;
  /** Whole-model passes to run, in order, before mergeTensor. */
  globalPasses: readonly GlobalPass[];
  mergeTensor(input: TensorMergeInput<P>): Float32Array;
}
