/**
 * Adam over plain typed arrays, as PyTorch's `torch.optim.Adam` computes it (no weight decay, no AMSGrad):
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  θ ← θ − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
 * A step is a pure function from (state, gradient) to a new state, in float64; the state is small data
 * (see state.ts for its safetensors form), so a run can be saved, moved and resumed between steps.
 */

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** PyTorch's defaults, and AdaMerging's (lr 1e-3). */
export const ADAM_DEFAULTS: AdamOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export interface AdamState {
  /** The parameters being learned (λ), row-major in `shape`. */
  params: Float64Array;
  /** First and second moment estimates, same layout as params. */
  m: Float64Array;
  v: Float64Array;
  /** Steps taken so far (t of the last update; 0 before the first). */
  step: number;
  /** How far the run's seeded random stream has been consumed (batch order); carried, not used, by Adam. */
  rngCursor: number;
  shape: number[];
}

export function adamInit(params: Float64Array, shape: readonly number[] = [params.length], rngCursor = 0): AdamState {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== params.length) throw new Error(`adam: shape [${shape}] holds ${n} values, params has ${params.length}`);
  return {
    params: Float64Array.from(params),
    m: new Float64Array(n),
    v: new Float64Array(n),
    step: 0,
    rngCursor,
    shape: [...shape],
  };
}

/** One Adam update; `state` is left untouched. `rngCursor` defaults to the state's. */
export function adamStep(
  state: AdamState,
  grad: ArrayLike<number>,
  opts: AdamOptions = ADAM_DEFAULTS,
  rngCursor = state.rngCursor,
): AdamState {
  const n = state.params.length;
  if (grad.length !== n) throw new Error(`adam: gradient has ${grad.length} values, the parameters ${n}`);
  const { lr, beta1, beta2, eps } = opts;
  const step = state.step + 1;
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const params = new Float64Array(n);
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    m[i] = beta1 * state.m[i] + (1 - beta1) * g;
    v[i] = beta2 * state.v[i] + (1 - beta2) * g * g;
    params[i] = state.params[i] - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
  return { params, m, v, step, rngCursor, shape: [...state.shape] };
}
