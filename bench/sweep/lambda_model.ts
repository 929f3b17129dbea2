/**
 * A merged model from AdaMerging coefficients: θ0 + Σk clamp(λk^l) τk^l over the given models, written as a
 * model folder (config.json + model.safetensors) that `evaluateModel` reads.
 */
import { lambdaIndex, LambdaLayout } from '../../core/merge/adamerging/coefficients';
import { clipVisionParamShapes } from '../../core/models/clip_vit';
import { readClipVisionConfig } from '../../core/models/clip_vit_load';
import { Checkpoint } from '../../core/safetensors';
import { joinUri } from '../../core/store';
import { writeModel } from '../../core/suite/io';

/** `models[k]` is the folder of the layout's k-th model; `pretrained` the folder of θ0. */
export async function writeLambdaModel(
  pretrained: string,
  models: readonly string[],
  layout: LambdaLayout,
  lambda: Float32Array,
  dir: string,
): Promise<void> {
  const c = await readClipVisionConfig(pretrained);
  const base = await Checkpoint.open(joinUri(pretrained, 'model.safetensors'));
  const cks = await Promise.all(models.map((m) => Checkpoint.open(joinUri(m, 'model.safetensors'))));
  const params: Record<string, Float32Array> = {};
  for (const [l, name] of layout.tensors.entries()) {
    const b = await base.readFloat32(name);
    const out = Float32Array.from(b);
    for (let k = 0; k < cks.length; k++) {
      const coef = Math.min(1, Math.max(0, lambda[lambdaIndex(layout, k, l)]));
      const m = await cks[k].readFloat32(name);
      for (let i = 0; i < out.length; i++) out[i] += coef * (m[i] - b[i]);
    }
    params[name] = out;
  }
  for (const { name } of clipVisionParamShapes(c)) params[name] ??= await base.readFloat32(name);
  await writeModel(dir, c, params);
}
