/**
 * Load a CLIP vision transformer from a Hugging Face folder (config.json + model.safetensors or shards):
 * CLIPVisionModelWithProjection, or a full CLIPModel whose vision half is taken. Weights become float32
 * tf tensors (F16 / BF16 / F64 are converted). Every mismatch is one line naming the checkpoint and tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Checkpoint } from '../safetensors';
import { NotFoundError, dirnameUri, joinUri, normalizeUri, readJson } from '../store';
import { ClipVisionConfig, clipVisionParamShapes, describeConfig, parseClipVisionConfig } from './clip_vit_config';
import { ModelError, sameShape, shapeStr } from './errors';

export interface ClipVisionModel {
  uri: string;
  config: ClipVisionConfig;
  params: Record<string, tf.Tensor>;
}

export async function readClipVisionConfig(folderUri: string): Promise<ClipVisionConfig> {
  const uri = joinUri(folderUri, 'config.json');
  let json: unknown;
  try {
    json = await readJson(uri, (why) => new ModelError(`${uri}: not valid JSON (${why})`));
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new ModelError(
        `${folderUri}: no config.json; a CLIP vision checkpoint needs the Hugging Face config.json beside its weights`,
      );
    }
    throw e;
  }
  return parseClipVisionConfig(json, uri);
}

/** `uriOrPath`: a folder (file://, s3:// or a plain path), or its .safetensors / .index.json file. */
export async function loadClipVision(uriOrPath: string): Promise<ClipVisionModel> {
  const uri = normalizeUri(uriOrPath).replace(/\/+$/, '');
  const folder = /\.(safetensors|json)$/.test(uri) ? dirnameUri(uri) : uri;
  const config = await readClipVisionConfig(folder);
  const ck = await Checkpoint.open(uri);
  const expected = clipVisionParamShapes(config);
  for (const { name, shape } of expected) {
    if (!ck.has(name)) {
      throw new ModelError(
        `${uri}: missing tensor '${name}' (expected shape ${shapeStr(shape)} for config.json ${describeConfig(config)})`,
      );
    }
    const info = ck.info(name);
    if (!sameShape(info.shape, shape)) {
      throw new ModelError(
        `${uri}: tensor '${name}' has shape ${shapeStr(info.shape)} but config.json (${describeConfig(config)}) ` +
          `implies ${shapeStr(shape)}`,
      );
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new ModelError(
        `${uri}: tensor '${name}' has dtype ${info.dtype}; expected a float dtype (F32, F16, BF16, F64)`,
      );
    }
  }
  const values = await Promise.all(expected.map(({ name }) => ck.readFloat32(name)));
  const params: Record<string, tf.Tensor> = {};
  expected.forEach(({ name, shape }, i) => (params[name] = tf.tensor(values[i], shape, 'float32')));
  return { uri, config, params };
}

export function disposeParams(params: Record<string, tf.Tensor>): void {
  for (const t of Object.values(params)) t.dispose();
}
