/** Task Arithmetic: θ = θ0 + λ Σk τk (default λ = 0.3). */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { addScaledTaskVector, applyDelta } from './task_vectors';
import { MergeMethod } from './method';

export const taskArithmeticParams = strictObject({
  scaling: z.number().finite().default(0.3).describe('λ, the weight of the summed task vectors'),
});

export const taskArithmetic: MergeMethod<z.infer<typeof taskArithmeticParams>> = {
  name: 'task_arithmetic',
  summary: 'θ0 + λ · sum of the task vectors',
  params: taskArithmeticParams,
  globalPasses: [],
  mergeTensor({ base, models, params }) {
    const delta = new Float32Array(base.length);
    for (const m of models) addScaledTaskVector(delta, m, base);
    return applyDelta(base, delta, params.scaling);
  },
};
