/**
 * CLIP vision transformer configuration, read from a Hugging Face config.json, and the parameter names and
 * shapes it implies (the names CLIPVisionModelWithProjection publishes; a full CLIPModel uses the same ones
 * for its vision half).
 */
import { ModelError } from './errors';

export const HIDDEN_ACTS = ['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh'] as const;
export type HiddenAct = (typeof HIDDEN_ACTS)[number];

export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  projectionDim: number;
  layerNormEps: number;
  hiddenAct: HiddenAct;
}

/**
 * transformers' CLIPVisionConfig defaults (ViT-B/32). save_pretrained writes only the keys that differ
 * from these, so a missing key means the default.
 */
export const CLIP_VISION_DEFAULTS: ClipVisionConfig = {
  hiddenSize: 768,
  intermediateSize: 3072,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  imageSize: 224,
  patchSize: 32,
  numChannels: 3,
  projectionDim: 512,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
};

const INT_KEYS: [keyof ClipVisionConfig, string][] = [
  ['hiddenSize', 'hidden_size'],
  ['intermediateSize', 'intermediate_size'],
  ['numHiddenLayers', 'num_hidden_layers'],
  ['numAttentionHeads', 'num_attention_heads'],
  ['imageSize', 'image_size'],
  ['patchSize', 'patch_size'],
  ['numChannels', 'num_channels'],
  ['projectionDim', 'projection_dim'],
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse either a CLIPVisionConfig json or a full CLIPConfig json (its "vision_config" is used, with the
 * top-level "projection_dim", which is what a CLIPModel's visual_projection has). `source` names the file.
 */
export function parseClipVisionConfig(json: unknown, source: string): ClipVisionConfig {
  if (!isObject(json)) throw new ModelError(`${source}: config must be a JSON object`);
  let v: Record<string, unknown> = json;
  if ('vision_config' in json) {
    if (!isObject(json.vision_config)) throw new ModelError(`${source}: "vision_config" must be a JSON object`);
    // CLIPModel sizes visual_projection by the top-level projection_dim (default 512, left out when default).
    v = { ...json.vision_config, projection_dim: json.projection_dim ?? CLIP_VISION_DEFAULTS.projectionDim };
  }
  const out: ClipVisionConfig = { ...CLIP_VISION_DEFAULTS };
  for (const [key, jsonKey] of INT_KEYS) {
    const x = v[jsonKey];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0) {
      throw new ModelError(`${source}: "${jsonKey}" must be a positive integer, got ${JSON.stringify(x)}`);
    }
    (out[key] as number) = x;
  }
  if (v.layer_norm_eps !== undefined) {
    if (typeof v.layer_norm_eps !== 'number' || !(v.layer_norm_eps > 0)) {
      throw new ModelError(
        `${source}: "layer_norm_eps" must be a positive number, got ${JSON.stringify(v.layer_norm_eps)}`,
      );
    }
    out.layerNormEps = v.layer_norm_eps;
  }
  if (v.hidden_act !== undefined) {
    if (!(HIDDEN_ACTS as readonly unknown[]).includes(v.hidden_act)) {
      throw new ModelError(
        `${source}: "hidden_act" ${JSON.stringify(v.hidden_act)} is not supported; use one of ${HIDDEN_ACTS.join(', ')}`,
      );
    }
    out.hiddenAct = v.hidden_act as HiddenAct;
  }
  if (out.hiddenSize % out.numAttentionHeads !== 0) {
    throw new ModelError(
      `${source}: hidden_size ${out.hiddenSize} is not divisible by num_attention_heads ${out.numAttentionHeads}`,
    );
  }
  if (out.patchSize > out.imageSize) {
    throw new ModelError(`${source}: patch_size ${out.patchSize} is larger than image_size ${out.imageSize}`);
  }
  return out;
}

/** Patches along one side: like the stride-p convolution, trailing pixels that do not fill a patch are dropped. */
export function patchGrid(c: ClipVisionConfig): number {
  return Math.floor(c.imageSize / c.patchSize);
}

/** Tokens per image: one class token plus one per patch. */
export function numPositions(c: ClipVisionConfig): number {
  return patchGrid(c) ** 2 + 1;
}

/** A short description of a config for error messages. */
export function describeConfig(c: ClipVisionConfig): string {
  return (
    `hidden_size=${c.hiddenSize} intermediate_size=${c.intermediateSize} layers=${c.numHiddenLayers} ` +
    `heads=${c.numAttentionHeads} image_size=${c.imageSize} patch_size=${c.patchSize} ` +
    `num_channels=${c.numChannels} projection_dim=${c.projectionDim}`
  );
}

export const VM = 'vision_model';
export const layerPrefix = (i: number): string => `${VM}.encoder.layers.${i}`;

export interface ParamShape {
  name: string;
  shape: number[];
}

/** Every parameter the forward pass reads, with its expected shape, in a stable order. */
export function clipVisionParamShapes(c: ClipVisionConfig): ParamShape[] {
  const d = c.hiddenSize;
  const out: ParamShape[] = [
    { name: `${VM}.embeddings.class_embedding`, shape: [d] },
    { name: `${VM}.embeddings.patch_embedding.weight`, shape: [d, c.numChannels, c.patchSize, c.patchSize] },
    { name: `${VM}.embeddings.position_embedding.weight`, shape: [numPositions(c), d] },
    { name: `${VM}.pre_layrnorm.weight`, shape: [d] },
    { name: `${VM}.pre_layrnorm.bias`, shape: [d] },
  ];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = layerPrefix(i);
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      out.push({ name: `${p}.self_attn.${proj}.weight`, shape: [d, d] });
      out.push({ name: `${p}.self_attn.${proj}.bias`, shape: [d] });
    }
    out.push({ name: `${p}.layer_norm1.weight`, shape: [d] }, { name: `${p}.layer_norm1.bias`, shape: [d] });
    out.push({ name: `${p}.mlp.fc1.weight`, shape: [c.intermediateSize, d] });
    out.push({ name: `${p}.mlp.fc1.bias`, shape: [c.intermediateSize] });
    out.push({ name: `${p}.mlp.fc2.weight`, shape: [d, c.intermediateSize] });
    out.push({ name: `${p}.mlp.fc2.bias`, shape: [d] });
    out.push({ name: `${p}.layer_norm2.weight`, shape: [d] }, { name: `${p}.layer_norm2.bias`, shape: [d] });
  }
  out.push({ name: `${VM}.post_layernorm.weight`, shape: [d] }, { name: `${VM}.post_layernorm.bias`, shape: [d] });
  out.push({ name: 'visual_projection.weight', shape: [c.projectionDim, d] });
  return out;
}
