/**
 * One AdaMerging epoch: N Adam steps on λ from a saved state, on a loaded session. Every M steps (and at the
 * end) the Adam state is written to a step-numbered key, with this epoch's losses so far in its metadata, so an
 * epoch cut short resumes from its last checkpoint and loses at most M steps. Step t reads the rows of
 * (seed, task, t) only, so a resumed or retried step computes the same gradient, bit for bit.
 */
import type { AdamState } from '../../optim/adam';
import { loadAdamState, saveAdamState } from '../../optim/state';
import { putObject, storeFor } from '../../store';
import { summarizeLambda, LambdaLayout, LambdaSummary } from './coefficients';
import { advance, initialState } from './adam_step';
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

/** The state an epoch (or a step of it) starts from, with the epoch's loss records so far. */
export async function startState(
  layout: LambdaLayout,
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
  return { state: initialState(plan, layout), records: [] };
}

/** The state after a step, at its step-numbered key, with the epoch's start and loss records so far. */
export async function writeEpochState(
  plan: AdaPlan,
  state: AdamState,
  fromStep: number,
  records: readonly LossRecord[],
): Promise<string> {
  const uri = stateKey(plan, state.step);
  await saveAdamState(uri, state, { from_step: String(fromStep), losses: JSON.stringify(records) });
  return uri;
}

/** An epoch's losses file (one record per step, in step order). */
export async function writeEpochLosses(plan: AdaPlan, fromStep: number, records: readonly LossRecord[]) {
  const uri = lossesKey(plan, fromStep);
  await putObject(uri, Buffer.from(JSON.stringify(records) + '\n'));
  return uri;
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
  const start = await startState(session.layout, plan, spec, resume);
  const records = start.records;
  let state = start.state;
  const resumedFrom = state.step;
  let stateUri = resume?.stateUri ?? spec.stateUri ?? '';
  let checkpointSeconds = 0;
  const save = async (): Promise<string> => {
    const t0 = performance.now();
    const uri = await writeEpochState(plan, state, spec.fromStep, records);
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
    const next = advance(plan, state, grad, lossPerTask, step);
    state = next.state;
    records.push(next.record);
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
  const lossesUri = await writeEpochLosses(plan, spec.fromStep, records);
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
