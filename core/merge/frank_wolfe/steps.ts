/**
 * The work of one Frank-Wolfe iteration as separate steps, each reading its inputs from the store and writing
 * its output at a key derived from (run, iteration), so a retry rewrites the same bytes:
 *  - gradient: g_j of one target at θt → <work>/grad/iter-t/<target>.safetensors
 *  - oracle shard: a run of merged tensors, g read for those tensors only, candidates streamed tensor by tensor;
 *    returns the dot products and norms (oracle_scores.ts), never a tensor
 *  - update: FW-Hard θt + a·(s − θt) with the coefficient kernel (TA) or its TIES trim; FW-Soft the layer-wise
 *    AdaMerging of the step sizes over the selected set → <work>/theta/iter-(t+1).safetensors
 * Each equals the matching part of runFrankWolfeLocal (local_run.ts), bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Dataset, openDataset } from '../../data/dataset';
import { clipVisionParamShapes } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { ClassificationHead, disposeHead, loadHead } from '../../models/head';
import { Checkpoint, fromFloat32, writeSafetensors } from '../../safetensors';
import { Committed, putObject } from '../../store';
import { recordCommitted } from '../../resume/ledger';
import { hardCoefficient, hardUpdate } from './fw_hard';
import { learnSoftStepSizes, softInit, softLayout, softTaskVectors, softUpdate } from './fw_soft';
import { readBatches, proxyRows, softStepData, softStepRows, toParams } from './local_run';
import { objectiveGradient, ObjectiveTarget } from './objective';
import { checkpointSource, minusBase } from './oracle';
import { accumulateCandidate, accumulateGrad, emptyScores, OracleScores } from './oracle_scores';
import type {
  FwGradientInput,
  FwGradientResult,
  FwIterationRecord,
  FwOracleInput,
  FwOracleResult,
  FwPick,
  FwPlan,
  FwScoresJson,
  FwUpdateInput,
  FwUpdateResult,
} from './run_types';
import { gradKey, softLossesKey, thetaKey } from './run_types';
import { fwKeys } from './resume';

/** Rows per forward pass of the objective (the sum does not depend on it), as local_run's default. */
const ROWS_PER_FORWARD = 16;

export interface StepHooks {
  /** Called after each unit of work (a tensor, an Adam step): activities heartbeat here. */
  tick?: (note: string) => void;
  stopRequested?: () => boolean;
}

/** θ (every merged tensor, float32) from a checkpoint. */
export async function readTheta(uri: string, tensors: readonly string[]): Promise<Record<string, Float32Array>> {
  const ck = await Checkpoint.open(uri);
  const out: Record<string, Float32Array> = {};
  for (const n of tensors) out[n] = await ck.readFloat32(n);
  return out;
}

/** Write float32 tensors (merged tensor order) as a safetensors object. */
export async function writeF32(
  uri: string,
  plan: Pick<FwPlan, 'tensors'>,
  shapes: Record<string, number[]>,
  values: Readonly<Record<string, Float32Array>>,
  metadata: Record<string, string>,
): Promise<Committed> {
  return writeSafetensors(
    uri,
    plan.tensors.map((n) => ({ name: n, dtype: 'F32' as const, shape: shapes[n] })),
    (t) => fromFloat32(values[t.name], 'F32'),
    metadata,
  );
}

async function shapesOf(plan: FwPlan) {
  const config = await readClipVisionConfig(plan.pretrained);
  const shapes = Object.fromEntries(clipVisionParamShapes(config).map((s) => [s.name, s.shape]));
  return { config, shapes };
}

/** g_j at θt for one target, scaled as its term of f (1/(rows · targets)); written to the store. */
export async function gradientStep(input: FwGradientInput): Promise<FwGradientResult> {
  const t0 = performance.now();
  const { plan, iteration, target: j } = input;
  const p = plan.params;
  const target = plan.targets[j];
  const { config, shapes } = await shapesOf(plan);
  const labeled = p.objective === 'cross_entropy';
  const dataUri = labeled ? target.proxy : target.data;
  if (!dataUri) throw new Error(`FW: target '${target.name}' has no ${labeled ? 'proxy' : 'unlabeled'} data`);
  const ds = await openDataset(dataUri, { cacheBytes: 64 * 1024 * 1024 });
  const rows = proxyRows(p.seed, target.name, ds.n, p.proxy_samples, iteration);
  const head = await loadHead(target.head);
  let g;
  try {
    const batches = await readBatches(ds, rows, ROWS_PER_FORWARD, labeled);
    const theta = await readTheta(input.theta, plan.tensors);
    const params = toParams(config, theta);
    try {
      g = objectiveGradient(config, params, plan.tensors, [{ name: target.name, head, batches }], {
        kind: p.objective,
        scaleTasks: plan.targets.length,
      });
    } finally {
      tf.dispose(Object.values(params));
    }
  } finally {
    disposeHead(head);
  }
  const uri = gradKey(plan, iteration, target.name);
  const written = await writeF32(uri, plan, shapes, g.grad, {
    iteration: String(iteration),
    target: target.name,
    loss: String(g.loss),
  });
  const seconds = (performance.now() - t0) / 1000;
  await recordCommitted(plan.workPrefix, fwKeys.gradient(iteration, j), { loss: g.loss, seconds }, written);
  return { uri, loss: g.loss, seconds };
}

/** Once θt+1 is written: the iteration's record into the ledger (a resumed run carries on after it). */
async function commitIteration(
  input: FwUpdateInput,
  theta: Committed,
  seconds: number,
  softLastLoss?: number,
): Promise<void> {
  if (!input.commit) return;
  const { gradient, oracle, activities } = input.commit.seconds;
  const record: FwIterationRecord = {
    ...input.commit,
    ...(softLastLoss === undefined ? {} : { softLastLoss }),
    seconds: { gradient, oracle, update: seconds, wall: gradient + oracle + seconds, activities: activities + seconds },
  };
  await recordCommitted(input.plan.workPrefix, fwKeys.iteration(input.iteration), record, theta);
}

function scoresJson(s: OracleScores): FwScoresJson {
  return {
    candidates: s.candidates,
    tensors: s.tensors,
    dot: Array.from(s.dot),
    candSq: Array.from(s.candSq),
    gradSq: Array.from(s.gradSq),
  };
}

/**
 * One oracle shard: its tensors of g (Σj g_j summed in target order, or each g_j), then every candidate streamed
 * tensor by tensor. Holds the shard's g and one candidate tensor at a time.
 */
export async function oracleShardStep(input: FwOracleInput, hooks: StepHooks = {}): Promise<FwOracleResult> {
  const t0 = performance.now();
  const tensors = input.plan.shards[input.shard];
  if (!tensors) throw new Error(`FW oracle: no shard ${input.shard}`);
  const grads = await Promise.all(input.grads.map((u) => Checkpoint.open(u)));
  const sets: Record<string, Float32Array>[] = input.mode === 'sum' ? [{}] : grads.map(() => ({}));
  for (const n of tensors) {
    for (let j = 0; j < grads.length; j++) {
      const v = await grads[j].readFloat32(n);
      if (input.mode === 'each') sets[j][n] = v;
      else if (j === 0) sets[0][n] = v;
      else {
        const acc = sets[0][n];
        for (let i = 0; i < acc.length; i++) acc[i] = acc[i] + v[i]; // float32 sum, as tf.add in target order
      }
    }
  }
  // every candidate tensor is read once and scored under each gradient set (FW-Soft: one per target)
  const scores = sets.map((_) =>
    emptyScores(
      input.candidates.map((c) => c.name),
      tensors,
    ),
  );
  sets.forEach((g, k) => tensors.forEach((n, p) => accumulateGrad(scores[k], p, g[n])));
  let reads = 0;
  const sources = input.candidates.map((c) => checkpointSource(c.name, c.uri));
  const vector =
    input.plan.params.oracle_basis === 'task_vectors'
      ? minusBase(checkpointSource('base', input.plan.pretrained))
      : undefined;
  for (let p = 0; p < tensors.length; p++) {
    for (let m = 0; m < sources.length; m++) {
      const read = await sources[m].read(tensors[p]);
      const theta = vector ? await vector(tensors[p], read) : read;
      sets.forEach((g, k) => accumulateCandidate(scores[k], m, p, g[tensors[p]], theta));
      reads++;
      hooks.tick?.(`${input.candidates[m].name}/${tensors[p]}`);
    }
  }
  return {
    scores: scores.map(scoresJson),
    reads,
    seconds: (performance.now() - t0) / 1000,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/** The selected model's tensors (θt's where the pick keeps it), read from the candidates. */
async function readPick(input: FwUpdateInput, pick: FwPick): Promise<Record<string, Float32Array | undefined>> {
  const sources = input.candidates.map((c) => checkpointSource(c.name, c.uri));
  const out: Record<string, Float32Array | undefined> = {};
  for (let p = 0; p < input.plan.tensors.length; p++) {
    const m = pick.choice[p];
    out[input.plan.tensors[p]] = m < 0 ? undefined : await sources[m].read(input.plan.tensors[p]);
  }
  return out;
}

/** FW-Hard: θt+1 = θt + a·(s − θt) (TA local merge, the coefficient kernel) or its top-keep trim (TIES). */
export async function hardUpdateStep(input: FwUpdateInput): Promise<FwUpdateResult> {
  const t0 = performance.now();
  const { plan, iteration } = input;
  const p = plan.params;
  if (input.picks.length !== 1) throw new Error(`FW-Hard: one pick per iteration, got ${input.picks.length}`);
  const { shapes } = await shapesOf(plan);
  const theta = await readTheta(input.theta, plan.tensors);
  const target = await readPick(input, input.picks[0]);
  const a = hardCoefficient(iteration, p.step_size, p.scaling);
  const next = hardUpdate(theta, target, plan.tensors, { localMerge: p.local_merge, a, keep: p.keep });
  const uri = thetaKey(plan, iteration + 1);
  const written = await writeF32(uri, plan, shapes, next, { iteration: String(iteration + 1), a: String(a) });
  const seconds = (performance.now() - t0) / 1000;
  await commitIteration(input, written, seconds);
  return { theta: uri, seconds };
}

/**
 * FW-Soft: layer-wise step sizes λ over the selected set by AdaMerging (Adam, no clamp; entropy on the targets'
 * unlabeled batches, or cross-entropy on batches of their labeled proxy sets), then θt+1 = θt + Σs λ_s^l (θ_s − θt).
 */
export async function softUpdateStep(input: FwUpdateInput, hooks: StepHooks = {}): Promise<FwUpdateResult> {
  const t0 = performance.now();
  const { plan, iteration: t } = input;
  const p = plan.params;
  const { config, shapes } = await shapesOf(plan);
  const theta = await readTheta(input.theta, plan.tensors);
  const selected = [];
  for (const pick of input.picks) selected.push(await readPick(input, pick));
  const vectors = softTaskVectors(theta, selected, plan.tensors);
  selected.length = 0;
  const names = input.picks.map((pk) => {
    const first = pk.choice[0];
    const whole = first >= 0 && pk.choice.every((m) => m === first);
    return whole && p.oracle === 'task' ? input.candidates[first].name : `composite:${pk.target}`;
  });
  const layout = softLayout(names, plan.tensors);
  const heads: ClassificationHead[] = [];
  const base = toParams(config, theta);
  let learned: { lambda: Float32Array; losses: number[] };
  try {
    const data: Dataset[] = [];
    for (const target of plan.targets) {
      heads.push(await loadHead(target.head));
      const { uri, what } = softStepData(p, target);
      if (!uri) throw new Error(`FW-Soft: target '${target.name}' has no ${what} data`);
      data.push(await openDataset(uri, { cacheBytes: 64 * 1024 * 1024 }));
    }
    const labeled = p.step_objective === 'proxy';
    const rowsAt = plan.targets.map((target, j) => softStepRows(p, target.name, data[j].n, t));
    learned = await learnSoftStepSizes({
      config,
      layout,
      theta: base,
      vectors,
      steps: p.adamerging_steps,
      init: softInit(t),
      lr: p.adamerging_lr,
      objective: labeled ? 'cross_entropy' : 'entropy',
      batchesAt: (step): Promise<ObjectiveTarget[]> =>
        Promise.all(
          plan.targets.map(async (target, j) => ({
            name: target.name,
            head: heads[j],
            batches: await readBatches(data[j], rowsAt[j](step), ROWS_PER_FORWARD, labeled),
          })),
        ),
      onStep: (step) => {
        hooks.tick?.(`adam ${step}`);
        if (hooks.stopRequested?.()) throw new Error(`FW-Soft: cancelled at Adam step ${step}`);
      },
    });
  } finally {
    tf.dispose(Object.values(base));
    heads.forEach(disposeHead);
  }
  const next = softUpdate(theta, vectors, layout, learned.lambda);
  const softLosses = softLossesKey(plan, t);
  await putObject(
    softLosses,
    Buffer.from(JSON.stringify({ selected: names, losses: learned.losses, lambda: Array.from(learned.lambda) }) + '\n'),
  );
  const uri = thetaKey(plan, t + 1);
  const written = await writeF32(uri, plan, shapes, next, { iteration: String(t + 1) });
  const seconds = (performance.now() - t0) / 1000;
  const softLastLoss = learned.losses[learned.losses.length - 1];
  await commitIteration(input, written, seconds, softLastLoss);
  return { theta: uri, seconds, softLosses, softLastLoss };
}

/** θ0 when the start is the pretrained model or a saved merge: its merged tensors as float32, in the work prefix. */
export async function copyStart(plan: FwPlan, from: string): Promise<string> {
  const { shapes } = await shapesOf(plan);
  const values = await readTheta(from, plan.tensors);
  const uri = thetaKey(plan, 0);
  const written = await writeF32(uri, plan, shapes, values, { iteration: '0', from });
  await recordCommitted(plan.workPrefix, fwKeys.start(), { from }, written);
  return uri;
}
