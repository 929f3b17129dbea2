/**
 * AdaMerging's `parallel: tasks` mode: a step is split into one unit of work per task (∂loss_k/∂λ on task k's
 * rows of that step, from the state at that step) and a reduce (sum the K gradients in task order, take the Adam
 * step, write the state). Gradients travel through the store as small safetensors objects (a claim check), so
 * the workflow only sees their URIs. The reduce uses the same sum and update as the sequential epoch
 * (gradient.ts sumTaskGradients, adam_step.ts advance) and writes the same state objects, so both modes give the
 * same λ, bit for bit, and the epoch's state and losses files have the same bytes.
 */
import { loadAdamState } from '../../optim/state';
import type { AdamState } from '../../optim/adam';
import { fromFloat32, SafetensorsFile, writeTensors } from '../../safetensors';
import { summarizeLambda } from './coefficients';
import { advance, initialState, planLayout } from './adam_step';
import { startState, writeEpochLosses, writeEpochState } from './epoch';
import { sumTaskGradients, taskEntropyLossAndGrad } from './gradient';
import type { AdaPlan, ApplyStepInput, ApplyStepResult, TaskGradientInput } from './run_types';
import { gradKey } from './run_types';
import type { AdaSession } from './session';

const GRAD_FORMAT = 'mergeflow-task-gradient';

async function stateAt(plan: AdaPlan, stateUri: string | undefined, step: number): Promise<AdamState> {
  if (!stateUri) {
    if (step !== 0) throw new Error(`AdaMerging: the gradient of step ${step} needs a state`);
    return initialState(plan);
  }
  const { state } = await loadAdamState(stateUri);
  if (state.step !== step) throw new Error(`${stateUri}: holds step ${state.step}, the gradient is for step ${step}`);
  return state;
}

/** Task `task`'s loss and gradient at step `step`, written to the store; returns its URI and the loss. */
export async function computeTaskGradient(
  session: AdaSession,
  plan: AdaPlan,
  input: Omit<TaskGradientInput, 'plan'>,
): Promise<{ gradUri: string; loss: number }> {
  const { step, task: k } = input;
  const name = plan.tasks[k]?.name;
  if (name === undefined) throw new Error(`AdaMerging: no task ${k} in a run of ${plan.tasks.length}`);
  const state = await stateAt(plan, input.stateUri, step);
  const rows = session.cursors[k].batches(step);
  const read = await Promise.all(rows.map((r) => session.data[k].readRows(r)));
  const { loss, grad } = taskEntropyLossAndGrad(
    session.model,
    session.heads[k],
    Float32Array.from(state.params),
    read.map((b) => ({ inputs: b.inputs, shape: b.shape })),
  );
  const gradUri = gradKey(plan, step, name);
  await writeTensors(gradUri, [{ name: 'grad', dtype: 'F32', shape: [grad.length], data: fromFloat32(grad, 'F32') }], {
    format: GRAD_FORMAT,
    step: String(step),
    task: name,
    loss: String(loss),
  });
  return { gradUri, loss };
}

async function readTaskGradient(
  uri: string,
  step: number,
  task: string,
): Promise<{ grad: Float32Array; loss: number }> {
  const f = await SafetensorsFile.open(uri);
  const md = f.header.metadata;
  if (md.format !== GRAD_FORMAT || md.step !== String(step) || md.task !== task)
    throw new Error(`${uri}: not the gradient of task '${task}' at step ${step} (metadata ${JSON.stringify(md)})`);
  return { grad: await f.readFloat32('grad'), loss: Number(md.loss) };
}

/** The reduce of step `step`: sum the task gradients in task order, Adam, write the state (and the losses). */
export async function applyTaskGradients(input: ApplyStepInput): Promise<Omit<ApplyStepResult, 'seconds'>> {
  const { plan, fromStep, step, end, gradUris } = input;
  if (gradUris.length !== plan.tasks.length)
    throw new Error(`AdaMerging: ${gradUris.length} gradients for ${plan.tasks.length} tasks at step ${step}`);
  const layout = planLayout(plan);
  const start = await startState(
    layout,
    plan,
    { stateUri: step === fromStep ? input.stateUri : undefined, fromStep, steps: end - fromStep },
    step === fromStep ? undefined : { step, stateUri: input.stateUri ?? '' },
  );
  const parts = await Promise.all(gradUris.map((u, k) => readTaskGradient(u, step, plan.tasks[k].name)));
  const lossPerTask = parts.map((p) => p.loss);
  const next = advance(plan, start.state, sumTaskGradients(parts.map((p) => p.grad)), lossPerTask, step);
  const records = [...start.records, next.record];
  const stateUri = await writeEpochState(plan, next.state, fromStep, records);
  const lossesUri = next.state.step === end ? await writeEpochLosses(plan, fromStep, records) : undefined;
  return {
    stateUri,
    step: next.state.step,
    lossPerTask,
    summary: summarizeLambda(layout, Float32Array.from(next.state.params), { clamp: plan.params.clamp }),
    lossesUri,
  };
}
