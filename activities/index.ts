import { createAdaMergingActivities } from './adamerging';
import { createEvalActivities } from './eval';
import { createFrankWolfeActivities } from './frank_wolfe';
import { createMergeActivities } from './merge';
import { createResumeActivities } from './resume';

export interface ActivityOptions {
  /** This worker process's own task queue (AdaMerging epochs report it, so the next one comes back here). */
  workerQueue?: string;
}

export function createActivities(opts: ActivityOptions = {}) {
  return {
    ...createMergeActivities(),
    ...createEvalActivities(),
    ...createAdaMergingActivities(opts),
    ...createFrankWolfeActivities(),
    ...createResumeActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
