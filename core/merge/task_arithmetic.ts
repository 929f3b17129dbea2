/** Task Arithmetic: θ = θ0 + λ Σk τk (default λ = 0.3), the linear kernel with every coefficient λ. */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { uniformTable } from './coefficients';
import { LinearMethod } from './method';

export const taskArithmeticParams = strictObject({
  scaling: z.number().finite().default(0.3).describe('λ, the weight of the summed task vectors'),
});

export const taskArithmetic: LinearMethod<z.infer<typeof taskArithmeticParams>> = {
  name: 'task_arithmetic',
  summary: 'θ0 + λ · sum of the task vectors',
  kind: 'linear',
  params: taskArithmeticParams,
  passes: [],
  coefficients: ({ params, models, tensors }) => uniformTable(models, tensors.length, params.scaling),
};
