/**
 * Resume support of Frank-Wolfe runs (the frankWolfeRun workflow). Its ledger holds θ0 (`start`), each completed
 * iteration with the θt+1 it wrote and its record (`iter-<t>`: losses, picks, step size) and each target's
 * gradient (`grad-<t>-<j>`). A resumed run starts after the last iteration of the unbroken chain from 0, at the
 * θ that iteration wrote, with the records of all before it; the gradients already written for the next
 * iteration are reused. An FW-Soft iteration cut off inside its AdaMerging update is redone whole (its Adam
 * steps live in one activity's memory and are not checkpointed).
 */
import { Checkpoint } from '../../safetensors';
import type { ResumeSupport } from '../../resume/support';
import type { FwGradientResult, FwIterationRecord, FwPlan } from './run_types';

const pad = (n: number) => String(n).padStart(5, '0');

export const fwKeys = {
  start: (): string => 'start',
  iteration: (t: number): string => `iter-${pad(t)}`,
  gradient: (t: number, target: number): string => `grad-${pad(t)}-${pad(target)}`,
};

/** Where a resumed Frank-Wolfe run starts. */
export interface FwFound {
  /** θ0 (FW-Hard's candidate 'start' too); without it the run starts over. */
  startUri?: string;
  /** Records of the completed iterations 0..n−1, in order. */
  records: FwIterationRecord[];
  /** θn, written by iteration n−1 (θ0 when no iteration completed). */
  theta?: string;
  /** Gradients of iteration n already written, by target index (null: to compute). */
  gradients: (FwGradientResult | null)[];
}

async function checkpointFiles(uri: string): Promise<string[]> {
  return (await Checkpoint.open(uri)).files.map((f) => f.uri);
}

export const frankWolfeResume: ResumeSupport<FwPlan, FwFound> = {
  workflowType: 'frankWolfeRun',
  async inputFiles(plan) {
    const files = await checkpointFiles(plan.pretrained);
    for (const c of plan.pool) files.push(...(await checkpointFiles(c.uri)));
    if (!['ta', 'ties', 'pretrained'].includes(plan.start)) files.push(...(await checkpointFiles(plan.start)));
    for (const t of plan.targets) {
      files.push(t.head);
      if (t.proxy) files.push(t.proxy);
      if (t.data) files.push(t.data);
    }
    return files;
  },
  findCommitted(plan, ledger) {
    const e = ledger.entries;
    const none: FwFound = { records: [], gradients: plan.targets.map(() => null) };
    const start = e[fwKeys.start()]?.object?.uri;
    // every iteration read θ0 (as θ0 or as FW-Hard's candidate 'start'): without it nothing is reusable
    if (!start) return none;
    const found: FwFound = { ...none, startUri: start, theta: start };
    for (let t = 0; t < plan.params.iterations; t++) {
      const it = e[fwKeys.iteration(t)];
      if (!it?.object) break;
      found.records.push(it.value as FwIterationRecord);
      found.theta = it.object.uri;
    }
    const next = found.records.length;
    found.gradients = plan.targets.map((_, j) => {
      const g = e[fwKeys.gradient(next, j)];
      return g?.object ? { ...(g.value as Omit<FwGradientResult, 'uri'>), uri: g.object.uri } : null;
    });
    return found;
  },
};
