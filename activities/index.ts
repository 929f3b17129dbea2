import { createEvalActivities } from './eval';
import { createMergeActivities } from './merge';

export function createActivities() {
  return { ...createMergeActivities(), ...createEvalActivities() };
}

export type Activities = ReturnType<typeof createActivities>;
