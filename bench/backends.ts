/**
 * One CLIP ViT forward+backward step (gradients for every weight) on each installed TensorFlow.js backend,
 * in the same process, against wasm as the baseline. Prints the median ms of the timed steps and × wasm.
 *
 *   node dist/bench/backends.js [--steps 5] [--vit-b32] [--b32-steps 2]
 *
 * The default model is the suite's full-size one (hidden 96, 2 layers, 28×28×1 images, 7×7 patches) at
 * batch 32; --vit-b32 adds ViT-B/32 (768 wide, 12 layers, 224×224×3, 32×32 patches) at batch 2, on
 * tensorflow and wasm only (cpu needs minutes a step there).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BackendChoice, backendDevice, initBackend, installedBackends } from '../core/tensor/backend';
import {
  CLIP_VISION_DEFAULTS,
  ClipVisionConfig,
  clipVisionForward,
  clipVisionParamShapes,
} from '../core/models/clip_vit';
import { mulberry32 } from '../core/data/rng';
import { RECIPES } from '../core/suite/recipe';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** Uniform values in [-scale, scale) from a seeded generator (the figures do not depend on the values). */
function uniform(n: number, next: () => number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * (2 * next() - 1);
  return out;
}

/** Median ms of `steps` timed forward+backward steps after one untimed warm-up step. */
function timeSteps(config: ClipVisionConfig, batch: number, steps: number): number {
  const next = mulberry32(1);
  const names: string[] = [];
  const params: tf.Tensor[] = [];
  for (const { name, shape } of clipVisionParamShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /(layer_norm\d|layrnorm|layernorm)\.weight$/.test(name);
    const v = uniform(n, next, shape.length > 1 ? 1 / Math.sqrt(n / shape[0]) : 0.1);
    if (isNormWeight) v.fill(1);
    names.push(name);
    params.push(tf.tensor(v, shape));
  }
  const { imageSize: s, numChannels: c, projectionDim: p } = config;
  const pixels = tf.tensor4d(uniform(batch * c * s * s, next, 1), [batch, c, s, s]);
  const w = tf.tensor2d(uniform(batch * p, next, 1), [batch, p]);
  const loss = (...ts: tf.Tensor[]) =>
    tf.sum(tf.mul(clipVisionForward(Object.fromEntries(names.map((n, i) => [n, ts[i]])), config, pixels), w));
  const step = (): number => {
    const t = process.hrtime.bigint();
    const grads = tf.grads(loss)(params);
    grads[grads.length - 1].dataSync(); // wait for the backend (the native one runs eagerly on its own threads)
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    tf.dispose(grads);
    return ms;
  };
  step();
  const times = Array.from({ length: steps }, step).sort((a, b) => a - b);
  tf.dispose([...params, pixels, w]);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const cases: { label: string; config: ClipVisionConfig; batch: number; steps: number; on: BackendChoice[] }[] = [
    {
      label: 'suite full (hidden 96, 2 layers, 28×28×1, patch 7), batch 32',
      config: RECIPES.full.model,
      batch: 32,
      steps: arg('steps', 5),
      on: installedBackends(),
    },
  ];
  if (process.argv.includes('--vit-b32')) {
    cases.push({
      label: 'ViT-B/32 (768 wide, 12 layers, 224×224×3, patch 32), batch 2',
      config: CLIP_VISION_DEFAULTS,
      batch: 2,
      steps: arg('b32-steps', 2),
      on: installedBackends().filter((b) => b !== 'cpu'),
    });
  }
  const rows: string[] = [];
  for (const c of cases) {
    const ms = new Map<string, number>();
    for (const backend of c.on) {
      const got = await initBackend(backend);
      if (got !== backend) throw new Error(`backend '${backend}' did not start (got '${got}')`);
      ms.set(backendDevice(), timeSteps(c.config, c.batch, c.steps));
      console.error(`${c.label}: ${backendDevice()} ${ms.get(backendDevice())!.toFixed(0)} ms`);
    }
    const wasm = ms.get('wasm (cpu)');
    for (const [name, t] of ms) {
      const ratio = wasm ? `${(wasm / t).toFixed(2)}×` : 'n/a';
      rows.push(`| ${c.label} | ${name} | ${t.toFixed(0)} | ${ratio} |`);
    }
  }
  console.log('\n| model | backend (device) | ms per step (median) | speed-up over wasm |\n|---|---|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
