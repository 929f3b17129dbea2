/**
 * AdaMerging's coefficients λ: their layout, initial value, clamp and a small summary.
 *
 * Task-wise: one λk per task, shared by every merged tensor (K values).
 * Layer-wise: one λk^l per task and merged tensor (K × L values, weight and bias counted separately),
 * stored row-major by task: λ[k·L + l]. The tensor order is `layout.tensors` (the model's parameter order).
 * The raw parameter is free; when clamping is on (the default, as in the reference code) the weights are
 * built from clamp(λ, 0, 1).
 */

export type Granularity = 'task' | 'layer';

export interface LambdaLayout {
  granularity: Granularity;
  /** Task names, in the order of the task vectors (K). */
  tasks: readonly string[];
  /** Names of the merged tensors, in order (L). */
  tensors: readonly string[];
}

/** The reference initial value. */
export const LAMBDA_INIT = 0.3;

export function makeLayout(
  granularity: Granularity,
  tasks: readonly string[],
  tensors: readonly string[],
): LambdaLayout {
  if (tasks.length === 0) throw new Error('AdaMerging needs at least one task');
  if (tensors.length === 0) throw new Error('AdaMerging needs at least one merged tensor');
  for (const [what, list] of [
    ['task', tasks],
    ['tensor', tensors],
  ] as const) {
    const seen = new Set<string>();
    for (const n of list) {
      if (seen.has(n)) throw new Error(`AdaMerging: ${what} '${n}' is listed twice`);
      seen.add(n);
    }
  }
  return { granularity, tasks: [...tasks], tensors: [...tensors] };
}

/** Number of coefficients: K (task-wise) or K × L (layer-wise). */
export function lambdaSize(layout: LambdaLayout): number {
  const k = layout.tasks.length;
  return layout.granularity === 'task' ? k : k * layout.tensors.length;
}

/** Position of λ for task k and tensor l in the flat vector. */
export function lambdaIndex(layout: LambdaLayout, k: number, l: number): number {
  return layout.granularity === 'task' ? k : k * layout.tensors.length + l;
}

export function initLambda(layout: LambdaLayout, init = LAMBDA_INIT): Float32Array {
  if (!Number.isFinite(init)) throw new Error(`AdaMerging: initial λ must be finite, got ${init}`);
  return new Float32Array(lambdaSize(layout)).fill(init);
}

export function checkLambda(layout: LambdaLayout, lambda: ArrayLike<number>): void {
  const want = lambdaSize(layout);
  if (lambda.length !== want) {
    throw new Error(
      `AdaMerging: λ has ${lambda.length} values; a ${layout.granularity}-wise layout of ${layout.tasks.length} ` +
        `task(s) × ${layout.tensors.length} tensor(s) needs ${want}`,
    );
  }
}

/** λ clamped to [0, 1]: the coefficients the merged weights are built from when clamping is on. */
export function clampLambda(lambda: ArrayLike<number>): Float32Array {
  return Float32Array.from(lambda, (v) => Math.min(1, Math.max(0, v)));
}

export interface LambdaSummary {
  task: string;
  /** Mean over the task's coefficients (one value task-wise, L layer-wise), as used (clamped when on). */
  mean: number;
  min: number;
  max: number;
}

/** Per task: mean, min and max of the coefficients the weights are built from. Small: fits a workflow payload. */
export function summarizeLambda(
  layout: LambdaLayout,
  lambda: ArrayLike<number>,
  opts: { clamp?: boolean } = {},
): LambdaSummary[] {
  checkLambda(layout, lambda);
  const used = opts.clamp === false ? Float32Array.from(lambda) : clampLambda(lambda);
  const per = layout.granularity === 'task' ? 1 : layout.tensors.length;
  return layout.tasks.map((task, k) => {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < per; j++) {
      const v = used[k * per + j];
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    return { task, mean: sum / per, min, max };
  });
}
