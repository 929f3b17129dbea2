/** The two figures of an orchestration-overhead bench: a run's wall against its work, and the overhead's share. */
import { figure, Figure } from './types';

/** Issue 8: orchestration at most 5 % of a run's wall. */
export const OVERHEAD_GOAL = 5;

export function overheadFigures(prefix: string, tag: string, wall: number, work: number, what: string): Figure[] {
  return [
    figure({
      name: `${prefix}.workflow_wall.${tag}`,
      value: wall,
      unit: 's',
      baseline: what,
      baseline_value: work,
      goal: `orchestration <= ${OVERHEAD_GOAL} % of wall (ratio <= ${(1 / (1 - OVERHEAD_GOAL / 100)).toFixed(4)})`,
      check: (_v, ratio) => ratio !== null && 1 - 1 / ratio <= OVERHEAD_GOAL / 100,
    }),
    figure({
      name: `${prefix}.share_of_wall.${tag}`,
      value: 100 * (1 - work / wall),
      unit: '%',
      baseline: null,
      baseline_value: null,
      goal: `value <= ${OVERHEAD_GOAL}`,
      check: (v) => v <= OVERHEAD_GOAL,
    }),
  ];
}
