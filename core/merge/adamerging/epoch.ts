/**
 * One AdaMerging epoch: N Adam steps on λ from a saved state, on a loaded session. Every M steps (and at the
 * end) the Adam state is written to a step-numbered key, with this epoch's losses so far in its metadata, so an
 * epoch cut short resumes from its last checkpoint and loses at most M steps. Step t reads the rows of
 * (seed, task, t) only, so a resumed or retried step computes the same gradient, bit for bit.
 */
import { ADAM_DEFAULTS, adamInit, AdamState, adamStep } from '../../optim/adam';
import { loadAdamState, saveAdamState } from '../../optim/state';
import { putObject, storeFor } from '../../store';
import { clampLambda, initLambda, summarizeLambda, LambdaSummary } from './coefficients';
import { entropyLossAndGrad, UnlabeledBatch } from './gradient';
import type { AdaPlan, LossRecord } from './run_types';
import { lossesKey, stateKey, stepOfStateKey } from './run_types';
import type { AdaSession } from './session';

export interface EpochSpec {
  stateUri?: string;
  fromStep: number;
  steps: number;
}

export interface EpochHooks {
  /** After each step (its number is the count of steps done); `checkpoint` is set when a state was written. */
  onStep?(step: number, checkpoint: string | undefined): void | Promise<void>;
  /** Checked after each step: when true, the state is written and the epoch stops (StoppedError). */
  stopRequested?(): boolean;
}

export interface EpochOutcome {
  stateUri: string;
  step: number;
  lossesUri: string;
  lastLoss: number[];
  summary: LambdaSummary[];
  resumedFrom: number;
  stepSeconds: number;
  /** Seconds spent writing checkpoints (inside the epoch, outside the steps). */
  checkpointSeconds: number;
}

export class EpochStoppedError extends Error {
  override name = 'EpochStoppedError';
  constructor(
    readonly step: number,
    readonly stateUri: string,
  ) {
    super(`AdaMerging epoch stopped at step ${step}; its state is ${stateUri}`);
  }
}

/** The latest checkpoint an epoch from `fromStep` wrote (steps fromStep+1 … toStep), or undefined. */
export async function latestCheckpoint(
  plan: AdaPlan,
  fromStep: number,
  toStep: number,
): Promise<{ step: number; stateUri: string } | undefined> {
  const prefix = `${plan.workPrefix}state/`;
  let best: { step: number; stateUri: string } | undefined;
  for (const uri of await storeFor(prefix).list(prefix)) {
    const s = stepOfStateKey(uri);
    if (s !== undefined && s > fromStep && s <= toStep && (!best || s > best.step)) best = { step: s, stateUri: uri };
  }
  return best;
}

function adamOptions(plan: AdaPlan) {
  return { ...ADAM_DEFAULTS, lr: plan.params.lr };
}

/** λ as the weights use it (clamped when on), for the task-wise loss records. */
function usedLambda(plan: AdaPlan, params: Float64Array): number[] {
  return Array.from(plan.params.clamp ? clampLambda(Float32Array.from(params)) : Float32Array.from(params));
}

async function startState(
  session: AdaSession,
  plan: AdaPlan,
  spec: EpochSpec,
  resume: { step: number; stateUri: string } | undefined,
): Promise<{ state: AdamState; records: LossRecord[] }> {
  if (resume) {
    const { state, metadata } = await loadAdamState(resume.stateUri);
    if (state.step !== resume.step || Number(metadata.from_step) !== spec.fromStep)
      throw new Error(
        `${resume.stateUri}: holds step ${state.step} from ${metadata.from_step}, expected ${resume.step} from ${spec.fromStep}`,
      );
    return { state, records: JSON.parse(metadata.losses ?? '[]') as LossRecord[] };
  }
  if (spec.stateUri) {
    const { state } = await loadAdamState(spec.stateUri);
    if (state.step !== spec.fromStep)
      throw new Error(`${spec.stateUri}: holds step ${state.step}, the epoch starts at ${spec.fromStep}`);
    return { state, records: [] };
  }
  if (spec.fromStep !== 0) throw new Error(`AdaMerging epoch from step ${spec.fromStep} needs a state`);
  const lambda = initLambda(session.layout, plan.params.init);
  return { state: adamInit(Float64Array.from(lambda), [lambda.length]), records: [] };
}

export async function runEpoch(
  session: AdaSession,
  plan: AdaPlan,
  spec: EpochSpec,
  resume?: { step: number; stateUri: string },
  hooks: EpochHooks = {},
): Promise<EpochOutcome> {
  const end = spec.fromStep + spec.steps;
  const every = plan.params.checkpoint_every;
  const taskWise = plan.params.granularity === 'task';
  const start = await startState(session, plan, spec, resume);
  const records = start.records;
  let state = start.state;
  const resumedFrom = state.step;
  let stateUri = resume?.stateUri ?? spec.stateUri ?? '';
  let checkpointSeconds = 0;
  const save = async (): Promise<string> => {
    const t0 = performance.now();
    const uri = stateKey(plan, state.step);
    await saveAdamState(uri, state, { from_step: String(spec.fromStep), losses: JSON.stringify(records) });
    checkpointSeconds += (performance.now() - t0) / 1000;
    return uri;
  };
  let stepSeconds = 0;
  for (let step = state.step; step < end; step++) {
    const t0 = performance.now();
    const batches: UnlabeledBatch[][] = [];
    for (let k = 0; k < session.heads.length; k++) {
      const rows = session.cursors[k].batches(step);
      const read = await Promise.all(rows.map((r) => session.data[k].readRows(r)));
      batches.push(read.map((b) => ({ inputs: b.inputs, shape: b.shape })));
    }
    const { lossPerTask, grad } = entropyLossAndGrad(
      session.model,
      session.heads,
      Float32Array.from(state.params),
      batches,
    );
    if (!lossPerTask.every(Number.isFinite) || !grad.every(Number.isFinite))
      throw new Error(`AdaMerging: non-finite loss or gradient at step ${step} (losses ${lossPerTask.join(', ')})`);
    state = adamStep(state, grad, adamOptions(plan), step + 1);
    records.push({ step, loss: lossPerTask, ...(taskWise ? { lambda: usedLambda(plan, state.params) } : {}) });
    stepSeconds += (performance.now() - t0) / 1000;
    const due = (state.step - spec.fromStep) % every === 0 || state.step === end;
    let written: string | undefined;
    if (due) written = stateUri = await save();
    if (hooks.stopRequested?.() && state.step < end) {
      if (!written) stateUri = await save();
      throw new EpochStoppedError(state.step, stateUri);
    }
    await hooks.onStep?.(state.step, written);
  }
  if (state.step !== end || !stateUri) stateUri = await save();
  const lossesUri = lossesKey(plan, spec.fromStep);
  await putObject(lossesUri, Buffer.from(JSON.stringify(records) + '\n'));
  return {
    stateUri,
    step: state.step,
    lossesUri,
    lastLoss: records.length ? records[records.length - 1].loss : [],
    summary: summarizeLambda(session.layout, Float32Array.from(state.params), { clamp: plan.params.clamp }),
    resumedFrom,
    stepSeconds,
    checkpointSeconds,
  };
}
