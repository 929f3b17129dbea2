/** Weight averaging: θ = θ0 + (1/K) Σk τk. */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { addScaledTaskVector, applyDelta } from './task_vectors';
import { MergeMethod } from './method';

export const weightAverageParams = strictObject({});

export const weightAverage: MergeMethod<z.infer<typeof weightAverageParams>> = {
  name: 'weight_average',
  summary: 'θ0 + mean of the task vectors',
  params: weightAverageParams,
  globalPasses: [],
  mergeTensor({ base, models }) {
    const delta = new Float32Array(base.length);
    for (const m of models) addScaledTaskVector(delta, m, base);
    return applyDelta(base, delta, 1 / models.length);
  },
};
