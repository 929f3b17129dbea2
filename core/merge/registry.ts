/** `method:` names in configs map to merge modules here. */
import { MergeMethod } from './method';
import { taskArithmetic } from './task_arithmetic';
import { ties } from './ties';
import { weightAverage } from './weight_average';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const DATA_FREE_METHODS: Record<string, MergeMethod<any>> = {
  [weightAverage.name]: weightAverage,
  [taskArithmetic.name]: taskArithmetic,
  [ties.name]: ties,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function dataFreeMethod(name: string): MergeMethod<any> {
  const m = DATA_FREE_METHODS[name];
  if (!m) throw new Error(`unknown merge method '${name}'; choose one of ${Object.keys(DATA_FREE_METHODS).join(', ')}`);
  return m;
}
