/** Writing suite models (Hugging Face layout) and heads (safetensors). */
import { fromFloat32, writeTensors } from '../safetensors';
import { clipVisionParamShapes, ClipVisionConfig } from '../models/clip_vit';
import { joinUri, putObject } from '../store';
import { hfConfigJson } from './recipe';
import type { HeadValues, ParamValues } from './train';

const f32 = (values: Float32Array): Uint8Array => fromFloat32(values, 'F32');

/** Write <folder>/config.json and <folder>/model.safetensors (F32, Hugging Face tensor names). Returns both URIs. */
export async function writeModel(folder: string, c: ClipVisionConfig, params: ParamValues): Promise<string[]> {
  const cfg = joinUri(folder, 'config.json');
  await putObject(cfg, Buffer.from(JSON.stringify(hfConfigJson(c), null, 2) + '\n', 'utf8'));
  const st = joinUri(folder, 'model.safetensors');
  await writeTensors(
    st,
    clipVisionParamShapes(c).map(({ name, shape }) => {
      const v = params[name];
      if (!v) throw new Error(`writeModel: no values for '${name}'`);
      return { name, dtype: 'F32' as const, shape, data: f32(v) };
    }),
    { format: 'pt' },
  );
  return [cfg, st];
}

/** Write a CLIP-style head: `weight` [classes, dim] and `logit_scale` [1] (the log of the scale). */
export async function writeHead(
  uri: string,
  head: HeadValues,
  task: string,
  classNames: readonly string[],
): Promise<string> {
  await writeTensors(
    uri,
    [
      { name: 'weight', dtype: 'F32', shape: [head.classes, head.dim], data: f32(head.weight) },
      { name: 'logit_scale', dtype: 'F32', shape: [1], data: f32(Float32Array.of(head.logitScale)) },
      ...(head.bias ? [{ name: 'bias', dtype: 'F32' as const, shape: [head.classes], data: f32(head.bias) }] : []),
    ],
    { format: 'pt', task, class_names: JSON.stringify(classNames) },
  );
  return uri;
}
