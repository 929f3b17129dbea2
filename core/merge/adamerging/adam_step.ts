/**
 * The optimiser step of an AdaMerging run, shared by the sequential epoch and the `parallel: tasks` reduce so
 * both take the same update from the same gradient: Adam on λ with the run's lr, and the step's loss record.
 */
import { ADAM_DEFAULTS, adamInit, AdamState, adamStep } from '../../optim/adam';
import { clampLambda, initLambda, LambdaLayout, makeLayout } from './coefficients';
import type { AdaPlan, LossRecord } from './run_types';

export function adamOptions(plan: AdaPlan) {
  return { ...ADAM_DEFAULTS, lr: plan.params.lr };
}

/** λ as the weights use it (clamped when on), for the task-wise loss records. */
export function usedLambda(plan: AdaPlan, params: Float64Array): number[] {
  return Array.from(plan.params.clamp ? clampLambda(Float32Array.from(params)) : Float32Array.from(params));
}

/**
 * λ's layout from the plan alone (no model loaded): the counts are what sizing and summaries need, so the
 * tensors carry placeholder names.
 */
export function planLayout(plan: AdaPlan): LambdaLayout {
  return makeLayout(
    plan.params.granularity,
    plan.tasks.map((t) => t.name),
    Array.from({ length: plan.tensorCount }, (_, l) => `tensor-${l}`),
  );
}

/** The state before step 0: λ at its initial value, zero moments. */
export function initialState(plan: AdaPlan, layout: LambdaLayout = planLayout(plan)): AdamState {
  const lambda = initLambda(layout, plan.params.init);
  return adamInit(Float64Array.from(lambda), [lambda.length]);
}

/** Step `step` (0-based): the Adam update with ∂loss/∂λ, and the record of the step's losses. */
export function advance(
  plan: AdaPlan,
  state: AdamState,
  grad: Float32Array,
  lossPerTask: number[],
  step: number,
): { state: AdamState; record: LossRecord } {
  if (!lossPerTask.every(Number.isFinite) || !grad.every(Number.isFinite))
    throw new Error(`AdaMerging: non-finite loss or gradient at step ${step} (losses ${lossPerTask.join(', ')})`);
  const next = adamStep(state, grad, adamOptions(plan), step + 1);
  const taskWise = plan.params.granularity === 'task';
  return {
    state: next,
    record: { step, loss: lossPerTask, ...(taskWise ? { lambda: usedLambda(plan, next.params) } : {}) },
  };
}
