/**
 * Resume support of AdaMerging runs (the adaMergingRun workflow). Its ledger holds each AdaMerging++ task vector
 * (`task-vector-<k>`), each optimiser state the epochs wrote (`state-<step>`; at an epoch's end with the epoch's
 * results) and each epoch's losses (`losses-<from>`). A resumed run starts after the last epoch of the unbroken
 * chain from step 0, at the last verified checkpoint inside the next epoch when there is one.
 */
import { Checkpoint } from '../../safetensors';
import { ResumeSupport } from '../../resume/support';
import type { AdaCarried, AdaPlan } from './run_types';

export interface StateRecord {
  step: number;
  fromStep: number;
  /** Set on the state an epoch ended with. */
  end?: { lossesUri: string; lastLoss: number[]; summary: NonNullable<AdaCarried['summary']> };
}

export const adaKeys = {
  taskVector: (k: number): string => `task-vector-${k}`,
  state: (step: number): string => `state-${String(step).padStart(8, '0')}`,
  losses: (fromStep: number): string => `losses-${String(fromStep).padStart(8, '0')}`,
};

/** Where a resumed AdaMerging run starts. */
export interface AdaFound {
  /** AdaMerging++ task vectors, when every one checked out. */
  taskVectors?: string[];
  step: number;
  epochs: number;
  stateUri?: string;
  lossUris: string[];
  lastLoss?: number[];
  summary?: AdaCarried['summary'];
  /** A verified checkpoint inside the next epoch (its first attempt resumes there). */
  resumeAt?: { step: number; stateUri: string };
}

export const adaMergingResume: ResumeSupport<AdaPlan, AdaFound> = {
  workflowType: 'adaMergingRun',
  async inputFiles(plan) {
    const files = [plan.baseFile];
    for (const t of plan.tasks) {
      files.push(...(await Checkpoint.open(t.model)).files.map((f) => f.uri));
      files.push(t.head, t.data);
    }
    return files;
  },
  findCommitted(plan, ledger) {
    const e = ledger.entries;
    const vectors = plan.tasks.map((_, k) => e[adaKeys.taskVector(k)]?.object?.uri);
    const found: AdaFound = {
      taskVectors: vectors.every((v): v is string => v !== undefined) ? vectors : undefined,
      step: 0,
      epochs: 0,
      lossUris: [],
    };
    const states = Object.values(e)
      .filter((x) => x.key.startsWith('state-') && x.object)
      .map((x) => ({ ...(x.value as StateRecord), uri: x.object!.uri }))
      .sort((a, b) => a.step - b.step);
    // follow the epochs from step 0 while each one's end state and losses are there
    for (;;) {
      const next = states.find((s) => s.fromStep === found.step && s.end && e[adaKeys.losses(s.fromStep)]);
      if (!next?.end) break;
      Object.assign(found, {
        step: next.step,
        epochs: found.epochs + 1,
        stateUri: next.uri,
        lastLoss: next.end.lastLoss,
        summary: next.end.summary,
      });
      found.lossUris.push(next.end.lossesUri);
    }
    const inside = states.filter((s) => s.fromStep === found.step && s.step > found.step && !s.end).pop();
    if (inside) found.resumeAt = { step: inside.step, stateUri: inside.uri };
    return found;
  },
};
