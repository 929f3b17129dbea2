import { createMergeActivities } from './merge';

export function createActivities() {
  return { ...createMergeActivities() };
}

export type Activities = ReturnType<typeof createActivities>;
