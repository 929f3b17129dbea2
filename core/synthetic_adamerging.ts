/**
 * A tiny AdaMerging setup in the store: a CLIP-style ViT (width 8, 1 layer, 8×8 grey images), K fine-tuned
 * variants (θ0 + an O(1) task vector, so λ matters), a head per task and a small dataset per task (unlabeled
 * unless asked), all reproducible from a seed.
 */
import { ClipVisionConfig, clipVisionParamShapes, parseClipVisionConfig } from './models/clip_vit';
import { normalish, rngFor } from './data/rng';
import { writeDataset } from './data/dataset';
import { initParams, ParamValues } from './suite/train';
import { writeHead, writeModel } from './suite/io';
import { joinUri } from './store';

export const TINY: ClipVisionConfig = parseClipVisionConfig(
  {
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    image_size: 8,
    patch_size: 4,
    num_channels: 1,
    projection_dim: 4,
  },
  'tiny',
);
export const CLASSES = 5;

export interface AdaFixture {
  pretrained: string;
  tasks: { name: string; model: string; head: string; data: string }[];
}

export interface FixtureOptions {
  seed?: number;
  tasks?: number;
  rows?: number;
  /** Write labels with the data (the merged model is then evaluated). */
  labeled?: boolean;
  config?: ClipVisionConfig;
}

/** A tiny CLIP-style head for task k: seeded rows of unit length, logit scale 4 (tests of the merge maths). */
export function tinyHeadValues(
  seed: number,
  k: number,
  c: ClipVisionConfig = TINY,
): { weight: Float32Array; logitScale: number; classes: number; dim: number } {
  const rng = rngFor(seed, 'head', k);
  const w = Float32Array.from({ length: CLASSES * c.projectionDim }, () => normalish(rng));
  for (let y = 0; y < CLASSES; y++) {
    const row = w.subarray(y * c.projectionDim, (y + 1) * c.projectionDim);
    const norm = Math.hypot(...row);
    row.forEach((v, i) => (row[i] = v / norm));
  }
  return { weight: w, logitScale: Math.log(4), classes: CLASSES, dim: c.projectionDim };
}

export async function writeAdaFixture(prefix: string, o: FixtureOptions = {}): Promise<AdaFixture> {
  const seed = o.seed ?? 21;
  const K = o.tasks ?? 2;
  const rows = o.rows ?? 12;
  const c = o.config ?? TINY;
  const names = clipVisionParamShapes(c).map((s) => s.name);
  const base = initParams(c, seed);
  const pretrained = joinUri(prefix, 'pretrained');
  await writeModel(pretrained, c, base);
  const tasks: AdaFixture['tasks'] = [];
  for (let k = 0; k < K; k++) {
    const params: ParamValues = {};
    for (const n of names) {
      const rng = rngFor(seed, 'tv', k, n);
      params[n] = Float32Array.from(base[n], (v) => v + 0.3 * normalish(rng));
    }
    const model = joinUri(prefix, `task${k}`);
    await writeModel(model, c, params);
    const hr = rngFor(seed, 'head', k);
    const weight = Float32Array.from({ length: CLASSES * c.projectionDim }, () => normalish(hr));
    const head = await writeHead(
      joinUri(prefix, `head${k}.safetensors`),
      { weight, classes: CLASSES, dim: c.projectionDim, logitScale: Math.log(4) },
      `task${k}`,
      Array.from({ length: CLASSES }, (_, i) => `c${i}`),
    );
    const pr = rngFor(seed, 'pixels', k);
    const data = joinUri(prefix, `test${k}.safetensors`);
    const side = c.imageSize;
    await writeDataset(data, {
      inputs: Uint8Array.from({ length: rows * c.numChannels * side * side }, () => Math.floor(256 * pr())),
      shape: [rows, c.numChannels, side, side],
      prep: { mean: [0.5], std: [0.5], ...(o.labeled ? { classes: CLASSES } : {}) },
      ...(o.labeled ? { labels: Int32Array.from({ length: rows }, (_, i) => i % CLASSES) } : {}),
    });
    tasks.push({ name: `task${k}`, model, head, data });
  }
  return { pretrained, tasks };
}
