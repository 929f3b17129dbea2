/**
 * CLIP vision transformer: golden outputs from transformers (scripts/golden/make_vit_golden.py), gradients
 * against finite differences, and clear errors for checkpoints and inputs that do not fit.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, installedBackends } from '../core/tensor/backend';
import { Checkpoint, fromFloat32, toFloat32, writeTensors } from '../core/safetensors';
import { normalizeUri } from '../core/store';
import {
  CLIP_VISION_DEFAULTS,
  ClipVisionConfig,
  clipVisionForward,
  clipVisionParamShapes,
  disposeParams,
  loadClipVision,
  parseClipVisionConfig,
} from '../core/models/clip_vit';
import { maxAbsDiff, randn, rng } from './models-gradcheck';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'vit');
const CASES = fs
  .readdirSync(FIXTURES)
  .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'config.json')))
  .sort();
const quiet = () => undefined;

async function readTensor(file: string, name: string): Promise<tf.Tensor> {
  const ck = await Checkpoint.open(normalizeUri(file));
  return tf.tensor(await ck.readFloat32(name), ck.info(name).shape);
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-vit-'));
}

/** Copy a fixture folder, then let `edit` change its config and tensors. */
async function variant(
  fixture: string,
  edit: (config: Record<string, unknown>, tensors: Map<string, { shape: number[]; data: Float32Array }>) => void,
  dtype: 'F32' | 'F16' | 'BF16' = 'F32',
): Promise<string> {
  const src = path.join(FIXTURES, fixture);
  const dir = tmpDir();
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  const ck = await Checkpoint.open(normalizeUri(src));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of ck.tensors) tensors.set(t.name, { shape: t.shape, data: await ck.readFloat32(t.name) });
  edit(config, tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  await writeTensors(
    normalizeUri(path.join(dir, 'model.safetensors')),
    [...tensors].map(([name, t]) => ({ name, dtype, shape: t.shape, data: fromFloat32(t.data, dtype) })),
  );
  return dir;
}

describe('CLIP ViT golden outputs', () => {
  assert.ok(CASES.length >= 5, `expected the golden fixtures under ${FIXTURES}`);
  for (const backend of installedBackends()) {
    describe(`on ${backend}`, () => {
      before(async () => assert.equal(await initBackend(backend, quiet), backend));
      for (const name of CASES) {
        it(`${name}: image_embeds match transformers to 1e-4`, async () => {
          const dir = path.join(FIXTURES, name);
          const model = await loadClipVision(dir);
          const pixels = (await readTensor(path.join(dir, 'inputs.safetensors'), 'pixel_values')) as tf.Tensor4D;
          const expected = await readTensor(path.join(dir, 'expected.safetensors'), 'image_embeds');
          const before = tf.memory().numTensors;
          const out = clipVisionForward(model.params, model.config, pixels);
          assert.equal(tf.memory().numTensors, before + 1, 'forward must release its intermediates');
          assert.deepEqual(out.shape, expected.shape);
          const diff = maxAbsDiff(out.dataSync(), expected.dataSync());
          assert.ok(diff < 1e-4, `${name} on ${backend}: max |diff| ${diff}`);
          if (process.env.MERGEFLOW_TEST_VERBOSE)
            console.log(`${name} on ${backend}: max |diff| ${diff.toExponential(2)}`);
          tf.dispose([out, pixels, expected]);
          disposeParams(model.params);
        });
      }
    });
  }
});

describe('CLIP ViT config and parameter names', () => {
  it('names and shapes are exactly those transformers saves', async () => {
    for (const name of CASES.filter((c) => c !== 'full_clip')) {
      const dir = path.join(FIXTURES, name);
      const ck = await Checkpoint.open(normalizeUri(dir));
      const config = parseClipVisionConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), name);
      const want = clipVisionParamShapes(config)
        .map((p) => `${p.name} ${p.shape}`)
        .sort();
      const got = ck.tensors.map((t) => `${t.name} ${t.shape}`).sort();
      assert.deepEqual(got, want, name);
    }
  });

  it('defaults are ViT-B/32 (88M parameters as in openai/clip-vit-base-patch32)', () => {
    const c = parseClipVisionConfig({}, 'defaults');
    assert.deepEqual(c, CLIP_VISION_DEFAULTS);
    const shapes = clipVisionParamShapes(c);
    assert.equal(shapes.length, 5 + 12 * 16 + 3);
    // sum of numel of CLIPVisionModelWithProjection(CLIPVisionConfig()).state_dict() (transformers 5.24)
    assert.equal(
      shapes.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
      87_849_216,
    );
  });

  it('a full CLIPConfig uses vision_config and the top-level projection_dim', () => {
    const c = parseClipVisionConfig(
      {
        projection_dim: 768,
        vision_config: { hidden_size: 1024, num_attention_heads: 16, patch_size: 14, projection_dim: 512 },
      },
      'clip',
    );
    assert.equal(c.hiddenSize, 1024);
    assert.equal(c.patchSize, 14);
    assert.equal(c.projectionDim, 768);
  });

  it('rejects unsupported or inconsistent configs with one clear line', () => {
    assert.throws(
      () => parseClipVisionConfig({ hidden_act: 'relu' }, 'c.json'),
      /^ModelError: c\.json: "hidden_act" "relu" is not supported; use one of quick_gelu, gelu/,
    );
    assert.throws(
      () => parseClipVisionConfig({ hidden_size: 100, num_attention_heads: 12 }, 'c.json'),
      /hidden_size 100 is not divisible by num_attention_heads 12/,
    );
    assert.throws(
      () => parseClipVisionConfig({ patch_size: 0 }, 'c.json'),
      /"patch_size" must be a positive integer, got 0/,
    );
    assert.throws(() => parseClipVisionConfig([], 'c.json'), /c\.json: config must be a JSON object/);
  });
});

describe('CLIP ViT checkpoints that do not fit', () => {
  const made: string[] = [];
  before(async () => {
    await initBackend('cpu', quiet);
  });
  after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const mk = async (...args: Parameters<typeof variant>) => {
    const d = await variant(...args);
    made.push(d);
    return d;
  };

  it('config.json hidden_size disagreeing with the tensors', async () => {
    const dir = await mk('tiny_p8', (c) => (c.hidden_size = 48));
    await assert.rejects(
      loadClipVision(dir),
      /mergeflow-vit-\w+: tensor 'vision_model\.embeddings\.class_embedding' has shape \[32\] but config\.json \(hidden_size=48 .*\) implies \[48\]/,
    );
  });

  it('config.json intermediate_size disagreeing with the MLP', async () => {
    const dir = await mk('tiny_p8', (c) => (c.intermediate_size = 80));
    await assert.rejects(
      loadClipVision(dir),
      /tensor 'vision_model\.encoder\.layers\.0\.mlp\.fc1\.weight' has shape \[64, 32\] but config\.json .* implies \[80, 32\]/,
    );
  });

  it('config.json with more layers than the checkpoint', async () => {
    const dir = await mk('tiny_p8', (c) => (c.num_hidden_layers = 3));
    await assert.rejects(
      loadClipVision(dir),
      /: missing tensor 'vision_model\.encoder\.layers\.2\.self_attn\.k_proj\.weight' \(expected shape \[32, 32\]/,
    );
  });

  it('a tensor missing from the checkpoint', async () => {
    const dir = await mk('tiny_p8', (_c, t) => t.delete('vision_model.post_layernorm.bias'));
    await assert.rejects(loadClipVision(dir), (e: Error) => {
      assert.match(e.message, /missing tensor 'vision_model\.post_layernorm\.bias' \(expected shape \[32\]/);
      assert.ok(e.message.includes(normalizeUri(dir)), 'names the checkpoint');
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
  });

  it('a folder without config.json', async () => {
    const dir = await mk('tiny_p8', () => undefined);
    fs.rmSync(path.join(dir, 'config.json'));
    await assert.rejects(
      loadClipVision(dir),
      /no config\.json; a CLIP vision checkpoint needs the Hugging Face config\.json/,
    );
  });

  it('F16 and BF16 checkpoints load as float32 and stay close to the golden output', async () => {
    const pixels = (await readTensor(
      path.join(FIXTURES, 'tiny_p8', 'inputs.safetensors'),
      'pixel_values',
    )) as tf.Tensor4D;
    const expected = await readTensor(path.join(FIXTURES, 'tiny_p8', 'expected.safetensors'), 'image_embeds');
    const ref = await loadClipVision(path.join(FIXTURES, 'tiny_p8'));
    for (const dtype of ['F16', 'BF16'] as const) {
      const model = await loadClipVision(await mk('tiny_p8', () => undefined, dtype));
      const name = 'vision_model.encoder.layers.1.mlp.fc2.weight';
      const w = model.params[name];
      assert.equal(w.dtype, 'float32');
      const rounded = toFloat32(fromFloat32(ref.params[name].dataSync() as Float32Array, dtype), dtype);
      assert.deepEqual(w.dataSync(), rounded);
      const out = clipVisionForward(model.params, model.config, pixels);
      const diff = maxAbsDiff(out.dataSync(), expected.dataSync());
      assert.ok(diff < (dtype === 'F16' ? 2e-2 : 1e-1) && diff > 0, `${dtype}: max |diff| ${diff}`);
      out.dispose();
      disposeParams(model.params);
    }
    disposeParams(ref.params);
    tf.dispose([pixels, expected]);
  });

  it('pixel input of the wrong size, channels or rank', async () => {
    const model = await loadClipVision(path.join(FIXTURES, 'tiny_p8'));
    const run = (shape: number[]) => () => {
      const x: tf.Tensor = tf.zeros(shape);
      return clipVisionForward(model.params, model.config, x as tf.Tensor4D);
    };
    assert.throws(
      run([2, 3, 16, 16]),
      /^ModelError: pixel input has shape \[2, 3, 16, 16\]; this model expects \[N, 3, 32, 32\] \(image_size 32, num_channels 3\)/,
    );
    assert.throws(run([2, 1, 32, 32]), /pixel input has shape \[2, 1, 32, 32\]; this model expects \[N, 3, 32, 32\]/);
    assert.throws(
      run([3, 32, 32]),
      /pixel input has shape \[3, 32, 32\]; expected \[N, 3, 32, 32\] \(N, channels, height, width\)/,
    );
    disposeParams(model.params);
  });

  it('params map missing a tensor or with a wrong shape', async () => {
    const model = await loadClipVision(path.join(FIXTURES, 'tiny_p8'));
    const x = tf.zeros([1, 3, 32, 32]) as tf.Tensor4D;
    const { ['visual_projection.weight']: proj, ...rest } = model.params;
    assert.throws(
      () => clipVisionForward(rest, model.config, x),
      /params: missing tensor 'visual_projection\.weight' \(expected shape \[16, 32\]\)/,
    );
    const wrong = { ...model.params, 'visual_projection.weight': tf.zeros([16, 33]) };
    assert.throws(
      () => clipVisionForward(wrong, model.config, x),
      /tensor 'visual_projection\.weight' has shape \[16, 33\], expected \[16, 32\]/,
    );
    tf.dispose([x, proj, wrong['visual_projection.weight']]);
    disposeParams(rest);
  });
});

/** A tiny random model: O(1) activations, so finite differences in float32 are well conditioned. */
function tinyModel(act: ClipVisionConfig['hiddenAct'], seed: number) {
  const config = parseClipVisionConfig(
    {
      hidden_size: 8,
      intermediate_size: 12,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      image_size: 8,
      patch_size: 4,
      projection_dim: 4,
      hidden_act: act,
    },
    'tiny',
  );
  const next = rng(seed);
  const params: Record<string, tf.Tensor> = {};
  for (const { name, shape } of clipVisionParamShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /(layer_norm\d|layrnorm|layernorm)\.weight$/.test(name);
    const fanIn = shape.length > 1 ? n / shape[0] : 1;
    const v = randn(n, next, isNormWeight ? 0.2 : shape.length > 1 ? 1 / Math.sqrt(fanIn) : 0.3);
    if (isNormWeight) v.forEach((x, i) => (v[i] = 1 + x));
    params[name] = tf.tensor(v, shape);
  }
  const pixels = tf.tensor(randn(2 * 3 * 8 * 8, next), [2, 3, 8, 8]) as tf.Tensor4D;
  const w = tf.tensor(randn(2 * 4, next), [2, 4]);
  return { config, params, pixels, w, next };
}

describe('CLIP ViT gradients match finite differences', () => {
  const CHECKED = [
    'vision_model.embeddings.patch_embedding.weight',
    'vision_model.embeddings.class_embedding',
    'vision_model.embeddings.position_embedding.weight',
    'vision_model.pre_layrnorm.weight',
    'vision_model.encoder.layers.0.self_attn.q_proj.weight',
    'vision_model.encoder.layers.0.self_attn.k_proj.weight',
    'vision_model.encoder.layers.0.self_attn.v_proj.bias',
    'vision_model.encoder.layers.1.self_attn.out_proj.weight',
    'vision_model.encoder.layers.0.layer_norm1.bias',
    'vision_model.encoder.layers.1.layer_norm2.weight',
    'vision_model.encoder.layers.1.mlp.fc1.weight',
    'vision_model.encoder.layers.0.mlp.fc2.bias',
    'vision_model.post_layernorm.weight',
    'visual_projection.weight',
  ];
  for (const backend of installedBackends()) {
    for (const act of ['quick_gelu', 'gelu', 'gelu_new'] as const) {
      it(`${act} on ${backend}: directional derivatives of 14 parameters`, async () => {
        assert.equal(await initBackend(backend, quiet), backend);
        const { config, params, pixels, w, next } = tinyModel(act, 11);
        const loss = (ps: Record<string, tf.Tensor>) =>
          tf.tidy(() => tf.sum(tf.mul(clipVisionForward(ps, config, pixels), w)));
        const f = (...ts: tf.Tensor[]) => loss({ ...params, ...Object.fromEntries(CHECKED.map((n, i) => [n, ts[i]])) });
        const grads = tf.grads(f)(CHECKED.map((n) => params[n]));
        const eps = 1e-2;
        CHECKED.forEach((name, i) => {
          const p = params[name];
          const dir = tf.tensor(randn(p.size, next), p.shape);
          const analytic = tf.sum(tf.mul(grads[i], dir)).dataSync()[0];
          const at = (s: number) => tf.tidy(() => loss({ ...params, [name]: tf.add(p, tf.mul(dir, s)) }).dataSync()[0]);
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          const err = Math.abs(analytic - numeric);
          assert.ok(
            err <= 5e-3 * Math.max(1, Math.abs(numeric)),
            `${name}: analytic ${analytic} vs numeric ${numeric}`,
          );
          dir.dispose();
        });
        tf.dispose([...grads, pixels, w]);
        disposeParams(params);
      });
    }
  }

  it('merged weights θ0 + λ·τ built inside tf.grads get a gradient for λ', async () => {
    await initBackend('cpu', quiet);
    const base = tinyModel('quick_gelu', 3);
    const tuned = tinyModel('quick_gelu', 4);
    const names = Object.keys(base.params);
    const tau = Object.fromEntries(names.map((n) => [n, tf.sub(tuned.params[n], base.params[n])]));
    const loss = (lam: tf.Tensor) =>
      tf.tidy(() => {
        const merged = Object.fromEntries(names.map((n) => [n, tf.add(base.params[n], tf.mul(tau[n], lam))]));
        // the AdaMerging objective: entropy of the softmax over the projected embedding
        const p = tf.softmax(clipVisionForward(merged, base.config, base.pixels));
        return tf.neg(tf.sum(tf.mul(p, tf.log(p))));
      });
    const lam = tf.scalar(0.3);
    const g = tf.grad(loss)(lam).dataSync()[0];
    const eps = 1e-2;
    const numeric = (loss(tf.scalar(0.3 + eps)).dataSync()[0] - loss(tf.scalar(0.3 - eps)).dataSync()[0]) / (2 * eps);
    assert.ok(Math.abs(g - numeric) <= 5e-3 * Math.max(1, Math.abs(numeric)), `analytic ${g} vs numeric ${numeric}`);
    assert.notEqual(g, 0);
  });
});
