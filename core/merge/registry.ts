/** `method:` names in configs map to merge modules here. */
import { MergeMethod } from './method';
import { taskArithmetic } from './task_arithmetic';
import { ties } from './ties';
import { weightAverage } from './weight_average';

const dataFree = {
  weight_average: weightAverage,
  task_arithmetic: taskArithmetic,
  ties,
};

export type DataFreeMethodName = keyof typeof dataFree;
export const DATA_FREE_NAMES = Object.keys(dataFree) as DataFreeMethodName[];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const DATA_FREE_METHODS: Record<string, MergeMethod<any>> = dataFree;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function dataFreeMethod(name: string): MergeMethod<any> {
  const m = DATA_FREE_METHODS[name];
  if (!m) throw new Error(`unknown merge method '${name}'; choose one of ${Object.keys(DATA_FREE_METHODS).join(', ')}`);
  return m;
}
