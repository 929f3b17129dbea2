import { createAdaMergingActivities } from './adamerging';
import { createEvalActivities } from './eval';
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
    ...createResumeActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
