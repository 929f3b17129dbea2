/**
 * CLIP vision transformer (ViT) forward pass written with TensorFlow.js ops, matching transformers'
 * CLIPVisionModelWithProjection(...).image_embeds.
 *
 * Functional: weights come in as a plain name -> tensor map with Hugging Face names, so weights computed
 * inside tf.grads / tf.variableGrads (e.g. merged weights θ0 + Σ λ τ) take part in the gradient.
 * Every op used has a gradient registered by core/tensor/gradients on the cpu and wasm backends (the patch
 * embedding is a reshape and a matmul, not conv2d: wasm has no Conv2DBackpropFilter kernel), and products
 * go through core/tensor/matmul to stay on wasm's fast path.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; this registers the ones tf.grads needs here.
import '../tensor/gradients';
import {
  ClipVisionConfig,
  HiddenAct,
  VM,
  clipVisionParamShapes,
  layerPrefix,
  numPositions,
  patchGrid,
} from './clip_vit_config';
import { ModelError, sameShape, shapeStr } from './errors';
import { matMul } from '../tensor/matmul';

export * from './clip_vit_config';
export { loadClipVision, ClipVisionModel, disposeParams } from './clip_vit_load';

export type Params = Record<string, tf.Tensor>;

/** Check that `params` holds every tensor the config needs, with the right shape. */
export function checkClipVisionParams(params: Params, config: ClipVisionConfig, source = 'params'): void {
  for (const { name, shape } of clipVisionParamShapes(config)) {
    const t = params[name];
    if (!t) throw new ModelError(`${source}: missing tensor '${name}' (expected shape ${shapeStr(shape)})`);
    if (!sameShape(t.shape, shape)) {
      throw new ModelError(`${source}: tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
    }
  }
}

function checkPixels(pixels: tf.Tensor, c: ClipVisionConfig): void {
  const want = `[N, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}]`;
  if (pixels.rank !== 4) {
    throw new ModelError(
      `pixel input has shape ${shapeStr(pixels.shape)}; expected ${want} (N, channels, height, width)`,
    );
  }
  const [, ch, h, w] = pixels.shape;
  if (ch !== c.numChannels || h !== c.imageSize || w !== c.imageSize) {
    throw new ModelError(
      `pixel input has shape ${shapeStr(pixels.shape)}; this model expects ${want} ` +
        `(image_size ${c.imageSize}, num_channels ${c.numChannels}); resize the images first`,
    );
  }
  if (pixels.dtype !== 'float32') throw new ModelError(`pixel input has dtype ${pixels.dtype}; expected float32`);
}

/** x [..., in] @ w^T + b, with w [out, in] as torch.nn.Linear stores it. */
function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const lead = x.shape.slice(0, -1);
  let y = matMul(tf.reshape(x, [-1, inDim]), w, false, true);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[0]]);
}

function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

function activation(x: tf.Tensor, act: HiddenAct): tf.Tensor {
  switch (act) {
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'gelu': // exact, erf form (torch.nn.functional.gelu)
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
  }
}

/** [N, C, H, W] -> [N, g*g, D]: the stride-p, bias-free convolution of CLIP, as patches @ weight^T. */
function patchEmbed(pixels: tf.Tensor4D, weight: tf.Tensor, c: ClipVisionConfig): tf.Tensor {
  const n = pixels.shape[0];
  const g = patchGrid(c);
  const p = c.patchSize;
  const ch = c.numChannels;
  let x: tf.Tensor = pixels;
  if (g * p !== c.imageSize) x = tf.slice(x, [0, 0, 0, 0], [n, ch, g * p, g * p]);
  // [N, C, g, p, g, p] -> [N, g, g, C, p, p]: each row is one patch in (channel, row, column) order.
  x = tf.transpose(tf.reshape(x, [n * ch * g, p, g, p]), [0, 2, 1, 3]); // [N*C*g, g, p, p]
  x = tf.transpose(tf.reshape(x, [n, ch, g * g, p * p]), [0, 2, 1, 3]); // [N, g*g, C, p*p]
  x = tf.reshape(x, [n * g * g, ch * p * p]);
  const w2 = tf.reshape(weight, [c.hiddenSize, ch * p * p]);
  return tf.reshape(matMul(x, w2, false, true), [n, g * g, c.hiddenSize]);
}

function attention(x: tf.Tensor, params: Params, prefix: string, c: ClipVisionConfig): tf.Tensor {
  const [n, t, d] = x.shape;
  const h = c.numAttentionHeads;
  const hd = d / h;
  const heads = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [n, t, h, hd]), [0, 2, 1, 3]); // [N, H, T, hd]
  const proj = (name: string, y: tf.Tensor) =>
    linear(y, params[`${prefix}.self_attn.${name}.weight`], params[`${prefix}.self_attn.${name}.bias`]);
  const q = heads(tf.mul(proj('q_proj', x), 1 / Math.sqrt(hd)));
  const k = heads(proj('k_proj', x));
  const v = heads(proj('v_proj', x));
  const probs = tf.softmax(matMul(q, k, false, true)); // [N, H, T, T]
  const ctx = tf.reshape(tf.transpose(tf.matMul(probs, v), [0, 2, 1, 3]), [n, t, d]);
  return proj('out_proj', ctx);
}

function encoderLayer(x: tf.Tensor, params: Params, i: number, c: ClipVisionConfig): tf.Tensor {
  const p = layerPrefix(i);
  const eps = c.layerNormEps;
  let h = layerNorm(x, params[`${p}.layer_norm1.weight`], params[`${p}.layer_norm1.bias`], eps);
  x = tf.add(x, attention(h, params, p, c));
  h = layerNorm(x, params[`${p}.layer_norm2.weight`], params[`${p}.layer_norm2.bias`], eps);
  h = activation(linear(h, params[`${p}.mlp.fc1.weight`], params[`${p}.mlp.fc1.bias`]), c.hiddenAct);
  h = linear(h, params[`${p}.mlp.fc2.weight`], params[`${p}.mlp.fc2.bias`]);
  return tf.add(x, h);
}

/**
 * Projected image embeddings [N, projection_dim] for pixels [N, C, H, W] (float32, already normalized as
 * CLIPImageProcessor does). Intermediate tensors are released; the caller owns the result.
 */
export function clipVisionForward(params: Params, config: ClipVisionConfig, pixelValues: tf.Tensor4D): tf.Tensor2D {
  checkPixels(pixelValues, config);
  checkClipVisionParams(params, config);
  const c = config;
  const d = c.hiddenSize;
  const n = pixelValues.shape[0];
  const eps = c.layerNormEps;
  return tf.tidy(() => {
    const patches = patchEmbed(pixelValues, params[`${VM}.embeddings.patch_embedding.weight`], c);
    const cls = tf.broadcastTo(tf.reshape(params[`${VM}.embeddings.class_embedding`], [1, 1, d]), [n, 1, d]);
    let x = tf.concat([cls, patches], 1);
    x = tf.add(x, tf.reshape(params[`${VM}.embeddings.position_embedding.weight`], [1, numPositions(c), d]));
    x = layerNorm(x, params[`${VM}.pre_layrnorm.weight`], params[`${VM}.pre_layrnorm.bias`], eps);
    for (let i = 0; i < c.numHiddenLayers; i++) x = encoderLayer(x, params, i, c);
    let pooled = tf.reshape(tf.slice(x, [0, 0, 0], [n, 1, d]), [n, d]);
    pooled = layerNorm(pooled, params[`${VM}.post_layernorm.weight`], params[`${VM}.post_layernorm.bias`], eps);
    return linear(pooled, params['visual_projection.weight']) as tf.Tensor2D;
  });
}
