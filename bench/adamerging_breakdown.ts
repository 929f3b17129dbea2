/**
 * Where an AdaMerging step's time goes, on a built mini-8 suite, in this process: reading the batches, building
 * θ(λ) (θ0 + Σk λk τk for every merged tensor), the forward passes of the K tasks (CLIP vision model, head,
 * entropy), the backward passes with the pullback to λ, and the Adam update. Each part is timed on its own at
 * the same λ and batches, then the whole step (`entropyLossAndGrad` + Adam, what `runAdaMergingLocal` runs);
 * the worker's peak RSS is the process's. Orchestration (Temporal, the store) is not in this process: compare
 * the demo's or `bench/adamerging_run.ts`'s wall time with steps × the step here.
 *
 *   node dist/bench/adamerging_breakdown.js SUITE [--granularity layer|task] [--steps 20] [--batch 16]
 */
import * as tf from '@tensorflow/tfjs-core';
import { openDataset } from '../core/data/dataset';
import { ensureBackend } from '../core/eval/evaluate';
import { BatchRowCursor } from '../core/merge/adamerging/batches';
import { Granularity, initLambda, makeLayout } from '../core/merge/adamerging/coefficients';
import { AdaMergingModel, entropyLossAndGrad, entropyLosses, UnlabeledBatch } from '../core/merge/adamerging/gradient';
import { disposeTaskVectorStack, mergedParams, stackTaskVectors } from '../core/merge/adamerging/merged';
import { loadTaskVectors } from '../core/merge/adamerging/task_vectors_load';
import { clipVisionParamShapes, disposeParams, loadClipVision } from '../core/models/clip_vit';
import { disposeHead, loadHead } from '../core/models/head';
import { adamInit, adamStep } from '../core/optim/adam';
import { adaMergingTasks } from '../core/suite/config';
import { openSuite } from '../core/suite/manifest';
import { opt } from './harness/args';

const ms = (t0: number): number => performance.now() - t0;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main(): Promise<void> {
  const suiteUri = process.argv[2];
  if (!suiteUri || suiteUri.startsWith('--')) throw new Error('usage: adamerging_breakdown SUITE [--steps N]');
  const device = await ensureBackend('tensorflow');
  const suite = await openSuite(suiteUri);
  const steps = Number(opt('steps', '20'));
  const batchSize = Number(opt('batch', '16'));
  const tasks = adaMergingTasks(suite);
  const pre = await loadClipVision(suite.pretrained);
  const shapes = clipVisionParamShapes(pre.config);
  const layout = makeLayout(
    opt('granularity', 'layer') as Granularity,
    tasks.map((t) => t.name),
    shapes.map((s) => s.name),
  );
  const baseValues = layout.tensors.map((n) => pre.params[n].dataSync() as Float32Array);
  const vectors = await loadTaskVectors(
    tasks.map((t) => t.model),
    layout.tensors,
    baseValues,
    pre.config,
  );
  const byName = vectors.map((tv) => Object.fromEntries(layout.tensors.map((n, l) => [n, tv[l]])));
  const shapeOf = Object.fromEntries(shapes.map((s) => [s.name, s.shape]));
  const model: AdaMergingModel = {
    config: pre.config,
    layout,
    base: pre.params,
    taskVectors: stackTaskVectors(layout, shapeOf, byName),
  };
  const heads = await Promise.all(tasks.map((t) => loadHead(t.head)));
  const data = await Promise.all(tasks.map((t) => openDataset(t.data, { cacheBytes: 64 * 1024 * 1024 })));
  const cursors = data.map(
    (d, k) => new BatchRowCursor({ seed: 0, rows: d.n, batchSize, batchesPerTask: 1 }, tasks[k].name),
  );
  const lambda = initLambda(layout);
  let adam = adamInit(Float64Array.from(lambda));
  const parts = { read: [] as number[], build: [] as number[], forward: [] as number[], backward: [] as number[] };
  const adamMs: number[] = [];
  const stepMs: number[] = [];
  for (let step = 0; step < steps; step++) {
    let t0 = performance.now();
    const batches: UnlabeledBatch[][] = [];
    for (let k = 0; k < tasks.length; k++) {
      const read = await Promise.all(cursors[k].batches(step).map((r) => data[k].readRows(r)));
      batches.push(read.map((b) => ({ inputs: b.inputs, shape: b.shape })));
    }
    parts.read.push(ms(t0));
    // θ(λ) alone
    t0 = performance.now();
    const lam = tf.tensor1d(lambda);
    const merged = mergedParams(layout, model.base, model.taskVectors, lam, { clamp: true });
    Object.values(merged)[0].dataSync();
    const build = ms(t0);
    tf.dispose([lam, ...Object.values(merged)]);
    // θ(λ) + forward
    t0 = performance.now();
    entropyLosses(model, heads, lambda, batches);
    const buildForward = ms(t0);
    // the whole gradient (θ(λ), forward, backward, pullback to λ), then Adam: the step as the runs take it
    t0 = performance.now();
    const { grad } = entropyLossAndGrad(model, heads, lambda, batches);
    const full = ms(t0);
    t0 = performance.now();
    adam = adamStep(adam, grad);
    adamMs.push(ms(t0));
    stepMs.push(full + adamMs[adamMs.length - 1] + parts.read[parts.read.length - 1]);
    parts.build.push(build);
    parts.forward.push(buildForward - build);
    parts.backward.push(full - buildForward);
  }
  // the first step warms kernels up: leave it out when there are others
  const tail = (xs: number[]) => (xs.length > 1 ? xs.slice(1) : xs);
  const step = mean(tail(stepMs));
  const rows: [string, number][] = [
    ['read the batches', mean(tail(parts.read))],
    ['build θ(λ)', mean(tail(parts.build))],
    ['forward (model, head, entropy)', mean(tail(parts.forward))],
    ['backward + pullback to λ', mean(tail(parts.backward))],
    ['Adam update', mean(tail(adamMs))],
  ];
  process.stdout.write(
    `backend ${device}; ${tasks.length} tasks × ${batchSize} images, ${layout.granularity}-wise, ` +
      `${pre.config.numHiddenLayers} layers, projection ${pre.config.projectionDim}; mean of steps 2..${steps}\n` +
      `| part | ms a step | share |\n|---|---:|---:|\n` +
      rows.map(([k, v]) => `| ${k} | ${v.toFixed(1)} | ${((100 * v) / step).toFixed(1)} % |`).join('\n') +
      `\n| step | ${step.toFixed(1)} | |\n` +
      `peak RSS of the process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`,
  );
  heads.forEach(disposeHead);
  disposeTaskVectorStack(model.taskVectors);
  disposeParams(pre.params);
}

main().catch((e) => {
  process.stderr.write(`adamerging_breakdown: ${(e as Error).stack}\n`);
  process.exit(1);
});
