/** Whether every value is finite (v − v is 0 for finite values, NaN for NaN and ±Inf). */
export function allFinite(v: Float32Array): boolean {
  let acc = 0;
  for (let i = 0; i < v.length; i++) acc += v[i] - v[i];
  return acc === 0;
}
