/**
 * FW-Soft, pure parts: each iteration selects one candidate per target task j with g_j (never one already
 * selected this iteration), then learns layer-wise step sizes λ over the selected set S by AdaMerging:
 *   θ_{t+1}^l = θt^l + Σ_{s∈S} λ_s^l (θ_s^l − θt^l),
 * λ initialised at 0.3 on the first iteration and 1e-2 afterwards, no clamp, Adam, entropy on unlabeled test
 * batches (the spec) or, with `step_objective: proxy`, cross-entropy on batches of the labeled proxy set.
 * This is AdaMerging (core/merge/adamerging) with base θt and "task vectors" θ_s − θt; its merged weights and
 * the pullback to λ are reused from there, the ∂f/∂θ from objective.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ClipVisionConfig, Params } from '../../models/clip_vit';
import { adamInit, adamStep, ADAM_DEFAULTS } from '../../optim/adam';
import { linearMergeTaskVectors } from '../coefficients';
import { LambdaLayout, lambdaIndex, makeLayout } from '../adamerging/coefficients';
import {
  disposeTaskVectorStack,
  lambdaGradient,
  mergedParams,
  stackTaskVectors,
  TaskVectorStack,
} from '../adamerging/merged';
import { ObjectiveKind, ObjectiveTarget, objectiveGradTensors } from './objective';
import {
  LayerFallback,
  LayerSelection,
  OracleScores,
  selectLayerWise,
  selectTaskWise,
  TaskSelection,
} from './oracle_scores';

/** λ's initial value: 0.3 on the first iteration, 1e-2 afterwards (the reference's ada_coeff). */
export function softInit(iteration: number): number {
  return iteration === 0 ? 0.3 : 1e-2;
}

export type SoftPick =
  | { target: string; kind: 'task'; selection: TaskSelection }
  | { target: string; kind: 'layer'; selection: LayerSelection };

/**
 * One pick per target, in target order, each from the pool minus the candidates already picked this
 * iteration (task-wise: whole candidates; layer-wise: per tensor, as the reference). Stops once as many
 * picks as candidates were made. `scoreFor(j)` is the oracle's scores under g_j (computed when asked, so one
 * g is held at a time).
 */
export async function softSelect(
  targets: readonly string[],
  poolSize: number,
  oracle: 'task' | 'layer',
  scoreFor: (j: number) => Promise<OracleScores>,
  fallback: LayerFallback = 'argmin',
): Promise<SoftPick[]> {
  const picks: SoftPick[] = [];
  const taken = new Set<string>();
  let perTensor: Set<string>[] | undefined;
  for (let j = 0; j < targets.length && picks.length < poolSize; j++) {
    const scores = await scoreFor(j);
    if (scores.candidates.length !== poolSize)
      throw new Error(`FW-Soft: scores for ${scores.candidates.length} candidates, pool of ${poolSize}`);
    if (oracle === 'task') {
      const selection = selectTaskWise(scores, taken);
      taken.add(selection.candidate);
      picks.push({ target: targets[j], kind: 'task', selection });
    } else {
      perTensor ??= scores.tensors.map(() => new Set<string>());
      const selection = selectLayerWise(scores, { fallback, exclude: perTensor });
      selection.candidate.forEach((c, p) => c !== null && perTensor![p].add(c));
      picks.push({ target: targets[j], kind: 'layer', selection });
    }
  }
  return picks;
}

/** θ_s − θt per tensor for each selected model (a tensor absent from a composite, i.e. θt kept, gives 0). */
export function softTaskVectors(
  theta: Readonly<Record<string, Float32Array>>,
  selected: readonly Readonly<Record<string, Float32Array | undefined>>[],
  tensors: readonly string[],
): Record<string, Float32Array>[] {
  return selected.map((s) => {
    const tv: Record<string, Float32Array> = {};
    for (const n of tensors) {
      const t = theta[n];
      const v = s[n];
      const d = new Float32Array(t.length);
      if (v) for (let i = 0; i < d.length; i++) d[i] = v[i] - t[i];
      tv[n] = d;
    }
    return tv;
  });
}

export interface SoftStepInput {
  config: ClipVisionConfig;
  /** Layer-wise layout: "tasks" = the selected models (names), tensors = the merged tensors. */
  layout: LambdaLayout;
  /** θt: every tensor the forward pass reads. */
  theta: Params;
  /** θ_s − θt per selected model, layout order. */
  vectors: readonly Record<string, Float32Array>[];
  /**
   * The targets' batches of Adam step `step` (0-based within this iteration): unlabeled for entropy, labeled
   * for cross_entropy.
   */
  batchesAt: (step: number) => Promise<ObjectiveTarget[]>;
  /** What the step sizes minimise: entropy (default, AdaMerging's) or cross_entropy (the labeled proxy set). */
  objective?: ObjectiveKind;
  steps: number;
  init: number;
  lr?: number;
  onStep?: (step: number, loss: number) => void;
}

/** The layout FW-Soft learns: layer-wise, one λ per selected model per merged tensor. */
export function softLayout(selected: readonly string[], tensors: readonly string[]): LambdaLayout {
  return makeLayout('layer', selected, tensors);
}

/**
 * `steps` Adam steps on λ (no clamp) minimising Σj mean entropy_j (or mean cross-entropy_j) of
 * θt + Σs λ_s (θ_s − θt). Returns λ
 * (float32, the values the last step's weights would use next) and the loss before each step.
 */
export async function learnSoftStepSizes(o: SoftStepInput): Promise<{ lambda: Float32Array; losses: number[] }> {
  const { layout } = o;
  const shapes = Object.fromEntries(layout.tensors.map((n) => [n, o.theta[n].shape]));
  const tv = stackTaskVectors(layout, shapes, o.vectors);
  let state = adamInit(new Float64Array(layout.tasks.length * layout.tensors.length).fill(o.init));
  const opts = { ...ADAM_DEFAULTS, lr: o.lr ?? ADAM_DEFAULTS.lr };
  const losses: number[] = [];
  try {
    for (let step = 0; step < o.steps; step++) {
      const targets = await o.batchesAt(step);
      const { loss, grad } = softStepGradient(o.config, layout, o.theta, tv, Float32Array.from(state.params), targets, {
        kind: o.objective ?? 'entropy',
      });
      if (!Number.isFinite(loss) || !grad.every(Number.isFinite))
        throw new Error(`FW-Soft: non-finite loss or gradient at Adam step ${step}`);
      losses.push(loss);
      o.onStep?.(step, loss);
      state = adamStep(state, grad, opts);
    }
  } finally {
    disposeTaskVectorStack(tv);
  }
  return { lambda: Float32Array.from(state.params), losses };
}

/**
 * One step's objective Σj mean loss_j (entropy or cross-entropy; S = 1) at θt + Σs λ_s (θ_s − θt) and its
 * gradient with respect to λ (layout order). `tv` is the stack of θ_s − θt from stackTaskVectors.
 */
export function softStepGradient(
  config: ClipVisionConfig,
  layout: LambdaLayout,
  theta: Params,
  tv: TaskVectorStack,
  lambda: Float32Array,
  targets: readonly ObjectiveTarget[],
  o: { kind: ObjectiveKind },
): { loss: number; grad: Float32Array } {
  const lam = tf.tensor1d(lambda);
  const merged = mergedParams(layout, theta, tv, lam, { clamp: false });
  try {
    const { lossPerTarget, grads } = objectiveGradTensors(config, { ...theta, ...merged }, layout.tensors, targets, {
      kind: o.kind,
      scaleTasks: 1,
    });
    try {
      const grad = lambdaGradient(layout, tv, grads, lam, { clamp: false });
      return { loss: lossPerTarget.reduce((a, b) => a + b, 0), grad };
    } finally {
      tf.dispose(Object.values(grads));
    }
  } finally {
    tf.dispose([lam, ...Object.values(merged)]);
  }
}

/**
 * θ_{t+1}^l = θt^l + Σs λ_s^l (θ_s^l − θt^l): the linear kernel over task vectors with the λ table, in float32.
 */
export function softUpdate(
  theta: Readonly<Record<string, Float32Array>>,
  vectors: readonly Readonly<Record<string, Float32Array>>[],
  layout: LambdaLayout,
  lambda: ArrayLike<number>,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  layout.tensors.forEach((n, l) => {
    const coefs = layout.tasks.map((_, k) => lambda[lambdaIndex(layout, k, l)]);
    out[n] = linearMergeTaskVectors(
      theta[n],
      vectors.map((v) => v[n]),
      coefs,
    );
  });
  return out;
}
