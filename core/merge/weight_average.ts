/** Weight averaging: θ = θ0 + (1/K) Σk τk, the linear kernel with every coefficient 1/K. */
import { z } from 'zod';
import { strictObject } from '../config/strict';
import { uniformTable } from './coefficients';
import { LinearMethod } from './method';

export const weightAverageParams = strictObject({});

export const weightAverage: LinearMethod<z.infer<typeof weightAverageParams>> = {
  name: 'weight_average',
  summary: 'θ0 + mean of the task vectors',
  kind: 'linear',
  params: weightAverageParams,
  passes: [],
  coefficients: ({ models, tensors }) => uniformTable(models, tensors.length, 1 / models),
};
