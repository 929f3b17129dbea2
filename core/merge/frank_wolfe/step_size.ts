/**
 * Frank-Wolfe's step sizes, pure arithmetic with no tensor import, so the workflow can use them as they are.
 */

/** γt = 2/(t+2) · step_size. */
export function fwStepSize(t: number, stepSize: number): number {
  if (!Number.isSafeInteger(t) || t < 0) throw new Error(`FW: iteration must be a non-negative integer, got ${t}`);
  return (2 / (t + 2)) * stepSize;
}

/** a = γt · scaling: the weight of s_t in θ_{t+1}. */
export function hardCoefficient(t: number, stepSize: number, scaling: number): number {
  return fwStepSize(t, stepSize) * scaling;
}
