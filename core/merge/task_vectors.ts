/**
 * Element-wise helpers shared by the data-free methods, in float32 arithmetic (each operation rounded to
 * float32, as PyTorch computes; Math.fround of a float64 result of float32 operands is exactly that). Plain
 * typed-array loops: these merges are memory-bound.
 */

/** acc += scale * (model - base), element-wise in float32 (scale rounded to float32). */
export function addScaledTaskVector(acc: Float32Array, model: Float32Array, base: Float32Array, scale = 1): void {
  const n = acc.length;
  const f = Math.fround;
  const s = f(scale);
  if (s === 1) for (let i = 0; i < n; i++) acc[i] += f(model[i] - base[i]);
  else for (let i = 0; i < n; i++) acc[i] += f(s * f(model[i] - base[i]));
}

/** out = base + scale * delta, in float32 (scale rounded to float32). */
export function applyDelta(base: Float32Array, delta: Float32Array, scale: number): Float32Array {
  const f = Math.fround;
  const s = f(scale);
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = base[i] + f(s * delta[i]);
  return out;
}

export function checkSameLength(name: string, base: Float32Array, models: readonly Float32Array[]): void {
  for (const m of models) {
    if (m.length !== base.length)
      throw new Error(`tensor '${name}': element counts differ (${base.length} vs ${m.length})`);
  }
}
