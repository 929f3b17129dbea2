/**
 * The contract each merge method implements. Pure: no I/O, no Temporal. A method declares
 *  - its parameter schema;
 *  - the passes it needs before merging, each a map over shards (fold every float tensor of a shard into an
 *    accumulator, saved as a small JSON object in the store) and a small pure reduce of those objects into the
 *    next pass state;
 *  - its merge: a coefficient table for the one linear kernel θ0 + Σk c_k τk (coefficients.ts), or its own
 *    per-tensor function.
 * The pipeline's driver runs these the same way in the workflow and in process; no workflow knows a method.
 */
import type { z } from 'zod';

/** What the passes have found so far: small plain JSON (it travels in Temporal payloads). */
export type PassState = Record<string, unknown>;

export interface PassContext<P> {
  params: P;
  /** K, the number of models merged. */
  models: number;
  /** The state the earlier passes reduced to. */
  state: PassState;
}

/**
 * One float tensor of a shard, or one element chunk of it (large tensors stream in chunks, so a pass's fold
 * and a per-tensor merge must work element-wise): the base and every model's values, in float32. The arrays
 * are views into reused buffers, valid only during the call.
 */
export interface TensorValues {
  name: string;
  base: Float32Array;
  models: readonly Float32Array[];
}

export interface ShardPass<P, A = unknown> {
  /** Names the pass's objects in the store and its activities' heartbeats. */
  name: string;
  /** Progress phase shown while the pass runs. */
  phase: string;
  /** A fresh accumulator for one shard. */
  start(ctx: PassContext<P>): A;
  /** Fold one float tensor of the shard into the accumulator. */
  tensor(acc: A, t: TensorValues, ctx: PassContext<P>): void;
  /** The accumulator as plain JSON, written to the store. */
  save(acc: A): unknown;
  /** The saved accumulators of every shard, in shard order, reduced into the next state. */
  reduce(saved: readonly unknown[], ctx: PassContext<P>): PassState;
}

interface MethodBase<P> {
  name: string;
  summary: string;
  params: z.ZodType<P>;
  /** Passes to run, in order, before the merge. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  passes: readonly ShardPass<P, any>[];
}

/** θ^l = θ0^l + Σk c_k^l τk^l with a K × L coefficient table (weight averaging, Task Arithmetic, AdaMerging, FW). */
export interface LinearMethod<P> extends MethodBase<P> {
  kind: 'linear';
  /** The K × L table, row k = model k, column l = the l-th merged tensor, given the tensor names in order. */
  coefficients(ctx: PassContext<P> & { tensors: readonly string[] }): Float64Array;
  /**
   * True when these parameters ask for Σk c_k θk without the base (the base's float tensors are then not read;
   * its header still gives the layout, and its non-float tensors go to the output). Default: false.
   */
  baseFree?(params: P): boolean;
}

export interface TensorMergeInput<P> extends TensorValues {
  params: P;
  state: PassState;
}

/** A method with its own per-tensor merge (TIES). */
export interface TensorMethod<P> extends MethodBase<P> {
  kind: 'tensor';
  mergeTensor(input: TensorMergeInput<P>): Float32Array;
  /** The same merge of one element chunk written into out (base.length elements). */
  mergeInto(out: Float32Array, input: TensorMergeInput<P>): void;
}

export type MergeMethod<P> = LinearMethod<P> | TensorMethod<P>;
