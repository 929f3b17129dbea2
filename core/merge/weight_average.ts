/**
 * Weight averaging: θ = θ0 + (1/K) Σk τk, the linear kernel with every coefficient 1/K. With `base_free: true`
 * it is mergekit's `linear`: (1/K) Σk θk, without reading the base's float tensors. That is the same maths but
 * not the same float32 bytes (the models are summed instead of their task vectors, so the rounding differs).
 */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { uniformTable } from './coefficients';
import { LinearMethod } from './method';

export const weightAverageParams = strictObject({
  base_free: z
    .boolean()
    .optional()
    .describe('average the models themselves, without reading the base (mergekit linear); default false'),
});

export const weightAverage: LinearMethod<z.infer<typeof weightAverageParams>> = {
  name: 'weight_average',
  summary: 'θ0 + mean of the task vectors (base_free: the mean of the models)',
  kind: 'linear',
  params: weightAverageParams,
  passes: [],
  coefficients: ({ models, tensors }) => uniformTable(models, tensors.length, 1 / models),
  baseFree: (params) => params.base_free === true,
};
