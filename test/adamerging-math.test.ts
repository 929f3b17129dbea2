/** AdaMerging as pure core code: λ gradients, clamp, batch rows, AdaMerging++ vectors, entropy, local loop. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../core/tensor/backend';
import { clipVisionForward, ClipVisionConfig, clipVisionParamShapes } from '../core/models/clip_vit';
import { ClassificationHead, disposeHead, headLogits, makeHead } from '../core/models/head';
import { normalish, rngFor } from '../core/data/rng';
import { writeDataset } from '../core/data/dataset';
import { initParams, ParamValues } from '../core/suite/train';
import { writeHead, writeModel } from '../core/suite/io';
import { tiesMergeTensor } from '../core/merge/ties';
import {
  clampLambda,
  Granularity,
  initLambda,
  lambdaIndex,
  lambdaSize,
  LambdaLayout,
  makeLayout,
  summarizeLambda,
} from '../core/merge/adamerging/coefficients';
import { disposeTaskVectorStack, mergedParams, stackTaskVectors } from '../core/merge/adamerging/merged';
import { meanEntropy } from '../core/merge/adamerging/entropy';
import {
  AdaMergingModel,
  entropyLossAndGrad,
  entropyLosses,
  sumTaskGradients,
  taskEntropyLossAndGrad,
  UnlabeledBatch,
} from '../core/merge/adamerging/gradient';
import { BatchPlan, BatchRowCursor, epochOrder, stepBatches } from '../core/merge/adamerging/batches';
import { taskVectorThreshold, tiesTaskVectors } from '../core/merge/adamerging/ties_vectors';
import { OptimizerStep, runAdaMergingLocal } from '../core/merge/adamerging/local_run';
import { CLASSES as TINY_CLASSES, TINY, tinyHeadValues } from '../core/synthetic_adamerging';
import { fileUri, tmpDir } from './helpers/env';

const CONFIG: ClipVisionConfig = TINY; // the tiny CLIP ViT shared with the AdaMerging fixtures
const NAMES = clipVisionParamShapes(CONFIG).map((s) => s.name);
const SHAPES = Object.fromEntries(clipVisionParamShapes(CONFIG).map((s) => [s.name, s.shape]));
const CLASSES = TINY_CLASSES;

/** θ0 and K task vectors of O(1) size relative to θ0, so λ changes the outputs visibly. */
function tinyFamily(seed: number, K: number): { base: ParamValues; tvs: ParamValues[] } {
  const base = initParams(CONFIG, seed);
  const tvs = Array.from({ length: K }, (_, k) => {
    const tv: ParamValues = {};
    for (const n of NAMES) {
      const rng = rngFor(seed, 'tv', k, n);
      tv[n] = Float32Array.from(base[n], () => 0.3 * normalish(rng));
    }
    return tv;
  });
  return { base, tvs };
}

const headValues = (seed: number, k: number) => tinyHeadValues(seed, k, CONFIG);

function batch(seed: number, k: number, b: number, n: number): UnlabeledBatch {
  const rng = rngFor(seed, 'x', k, b);
  const shape: [number, number, number, number] = [n, 1, CONFIG.imageSize, CONFIG.imageSize];
  return { inputs: Float32Array.from({ length: n * 64 }, () => normalish(rng)), shape };
}

interface Problem {
  model: AdaMergingModel;
  heads: ClassificationHead[];
  batches: UnlabeledBatch[][];
  values: { base: ParamValues; tvs: ParamValues[] };
  dispose(): void;
}

function problem(granularity: Granularity, K = 2, batchesPerTask = 2): Problem {
  const values = tinyFamily(11, K);
  const layout = makeLayout(
    granularity,
    Array.from({ length: K }, (_, k) => `task${k}`),
    NAMES,
  );
  const base: Record<string, tf.Tensor> = {};
  for (const n of NAMES) base[n] = tf.tensor(values.base[n], SHAPES[n]);
  const taskVectors = stackTaskVectors(layout, SHAPES, values.tvs);
  const heads = Array.from({ length: K }, (_, k) => {
    const h = headValues(11, k);
    return makeHead(tf.tensor2d(h.weight, [CLASSES, CONFIG.projectionDim]), { logitScale: h.logitScale });
  });
  const batches = Array.from({ length: K }, (_, k) =>
    Array.from({ length: batchesPerTask }, (_, b) => batch(11, k, b, 3)),
  );
  return {
    model: { config: CONFIG, layout, base, taskVectors, clamp: true },
    heads,
    batches,
    values,
    dispose() {
      tf.dispose(Object.values(base));
      disposeTaskVectorStack(taskVectors);
      heads.forEach(disposeHead);
    },
  };
}

/**
 * The loss computed independently of merged.ts/gradient.ts: θ(λ) merged with plain float loops, a forward per
 * batch, the entropy written out from softmax probabilities.
 */
function referenceLoss(p: Problem, lambda: Float32Array): number {
  const { layout } = p.model;
  const c = clampLambda(lambda);
  const params: Record<string, tf.Tensor> = {};
  layout.tensors.forEach((n, l) => {
    const v = Float32Array.from(p.values.base[n]);
    p.values.tvs.forEach((tv, k) => {
      const coef = c[lambdaIndex(layout, k, l)];
      for (let i = 0; i < v.length; i++) v[i] += coef * tv[n][i];
    });
    params[n] = tf.tensor(v, SHAPES[n]);
  });
  let total = 0;
  p.heads.forEach((head, k) => {
    for (const b of p.batches[k]) {
      const probs = tf.tidy(() =>
        tf.softmax(headLogits(head, clipVisionForward(params, CONFIG, tf.tensor4d(b.inputs, b.shape)))),
      );
      const pr = probs.dataSync();
      probs.dispose();
      let h = 0;
      for (const q of pr) h -= q > 0 ? q * Math.log(q) : 0;
      total += h / b.shape[0] / p.batches[k].length;
    }
  });
  tf.dispose(Object.values(params));
  return total;
}

function spreadLambda(n: number, seed: number, lo = 0.15, hi = 0.85): Float32Array {
  const rng = rngFor(seed, 'lambda');
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
}

before(async () => {
  assert.equal(await initBackend('wasm', () => undefined), 'wasm');
});

describe('λ layout', () => {
  it('layout, init and summary', () => {
    const layout: LambdaLayout = makeLayout('layer', ['a', 'b'], ['w', 'b', 'c']);
    assert.equal(lambdaSize(layout), 6);
    assert.equal(lambdaIndex(layout, 1, 2), 5);
    assert.equal(lambdaSize(makeLayout('task', ['a', 'b'], ['w', 'b', 'c'])), 2);
    assert.deepEqual([...initLambda(layout)], Array(6).fill(Math.fround(0.3)));
    const s = summarizeLambda(layout, Float32Array.of(0.5, -1, 0.5, 2, 0.25, 0.75));
    assert.deepEqual(
      s.map((x) => [x.task, x.mean, x.min, x.max]),
      [
        ['a', 1 / 3, 0, 0.5],
        ['b', (1 + 0.25 + 0.75) / 3, 0.25, 1],
      ],
    );
    assert.throws(() => makeLayout('task', ['a', 'a'], ['w']), /task 'a' is listed twice/);
    assert.throws(
      () => summarizeLambda(layout, new Float32Array(5)),
      /λ has 5 values; a layer-wise layout of 2 task\(s\) × 3 tensor\(s\) needs 6/,
    );
  });
});

describe('AdaMerging λ gradient', () => {
  for (const granularity of ['task', 'layer'] as const) {
    it(`${granularity}-wise: ∂loss/∂λ equals central finite differences (clamp on, λ inside (0, 1))`, (t) => {
      const p = problem(granularity);
      const before = tf.memory().numTensors;
      try {
        const lambda = spreadLambda(lambdaSize(p.model.layout), granularity === 'task' ? 1 : 2);
        const { lossPerTask, grad } = entropyLossAndGrad(p.model, p.heads, lambda, p.batches);
        assert.equal(tf.memory().numTensors, before, 'entropyLossAndGrad leaked tensors');
        const loss = lossPerTask.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(loss - referenceLoss(p, lambda)) < 1e-5, `loss ${loss} vs ${referenceLoss(p, lambda)}`);
        const eps = 1e-2;
        let largest = 0;
        let worst = 0;
        for (let i = 0; i < lambda.length; i++) {
          const at = (d: number) => {
            const l = Float32Array.from(lambda);
            l[i] += d;
            return referenceLoss(p, l);
          };
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          largest = Math.max(largest, Math.abs(numeric));
          const err = Math.abs(numeric - grad[i]);
          worst = Math.max(worst, err / Math.max(0.1, Math.abs(numeric)));
          assert.ok(
            err <= 2e-3 * Math.max(0.1, Math.abs(numeric)),
            `λ[${i}]: analytic ${grad[i]} vs numeric ${numeric} (|diff| ${err})`,
          );
        }
        assert.ok(largest > 0.01, `the check is vacuous: every |∂loss/∂λ| <= ${largest}`);
        t.diagnostic(
          `${lambda.length} coefficients, max |∂loss/∂λ| ${largest.toFixed(4)}, worst relative error ${worst.toExponential(2)}`,
        );
      } finally {
        p.dispose();
      }
    });
  }

  it('an extra pool model without inputs: its λ is learned from the targets alone (finite differences)', () => {
    const p = problem('layer', 3, 1);
    // the third model is an extra one: no head, no inputs; the loss is the two targets' entropy
    const targets = { ...p, heads: p.heads.slice(0, 2), batches: p.batches.slice(0, 2) };
    try {
      const lambda = spreadLambda(lambdaSize(p.model.layout), 4);
      const { lossPerTask, grad } = entropyLossAndGrad(p.model, targets.heads, lambda, targets.batches);
      assert.equal(lossPerTask.length, 2);
      const L = p.model.layout.tensors.length;
      let largest = 0;
      for (let l = 0; l < L; l++) {
        const i = lambdaIndex(p.model.layout, 2, l);
        const at = (d: number) => {
          const x = Float32Array.from(lambda);
          x[i] += d;
          return referenceLoss(targets, x);
        };
        const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
        largest = Math.max(largest, Math.abs(numeric));
        assert.ok(
          Math.abs(numeric - grad[i]) <= 2e-3 * Math.max(0.1, Math.abs(numeric)),
          `λ[2][${l}]: ${grad[i]} vs ${numeric}`,
        );
      }
      assert.ok(largest > 0.01, `the extra model's λ does not move the loss: max |∂loss/∂λ| ${largest}`);
      assert.throws(() => entropyLossAndGrad(p.model, [], lambda, []), /0 heads for 3 tasks/);
    } finally {
      p.dispose();
    }
  });

  it('equals tf.grad through one graph over all tasks (the two-stage chain rule is exact)', () => {
    const p = problem('layer', 3, 1);
    try {
      const lambda = spreadLambda(lambdaSize(p.model.layout), 3);
      const { grad } = entropyLossAndGrad(p.model, p.heads, lambda, p.batches);
      const lam = tf.tensor1d(lambda);
      const direct = tf.grad((l: tf.Tensor) => {
        const merged = mergedParams(p.model.layout, p.model.base, p.model.taskVectors, l as tf.Tensor1D);
        const params = { ...p.model.base, ...merged };
        return tf.addN(
          p.heads.map((h, k) =>
            meanEntropy(
              headLogits(
                h,
                clipVisionForward(params, CONFIG, tf.tensor4d(p.batches[k][0].inputs, p.batches[k][0].shape)),
              ),
            ),
          ),
        ) as tf.Scalar;
      })(lam);
      const d = direct.dataSync();
      tf.dispose([lam, direct]);
      for (let i = 0; i < d.length; i++) {
        assert.ok(Math.abs(d[i] - grad[i]) <= 1e-5 * Math.max(1, Math.abs(d[i])), `λ[${i}]: ${grad[i]} vs ${d[i]}`);
      }
    } finally {
      p.dispose();
    }
  });

  for (const granularity of ['task', 'layer'] as const) {
    it(`${granularity}-wise: the per-task gradients (parallel: tasks) summed in task order are the step's, bit for bit`, () => {
      const p = problem(granularity, 3, 2);
      try {
        const lambda = spreadLambda(lambdaSize(p.model.layout), 5);
        const whole = entropyLossAndGrad(p.model, p.heads, lambda, p.batches);
        const before = tf.memory().numTensors;
        const per = p.heads.map((h, k) => taskEntropyLossAndGrad(p.model, h, lambda, p.batches[k]));
        assert.equal(tf.memory().numTensors, before, 'taskEntropyLossAndGrad leaked tensors');
        assert.deepEqual(
          per.map((x) => x.loss),
          whole.lossPerTask,
        );
        const summed = sumTaskGradients(per.map((x) => x.grad));
        assert.ok(Buffer.from(summed.buffer).equals(Buffer.from(whole.grad.buffer)), 'same gradient bytes');
        // each task contributes: dropping one changes the sum
        assert.ok(
          !Buffer.from(sumTaskGradients(per.slice(1).map((x) => x.grad)).buffer).equals(Buffer.from(summed.buffer)),
        );
        assert.throws(() => sumTaskGradients([per[0].grad, per[1].grad.subarray(1)]), /task 1's gradient has/);
      } finally {
        p.dispose();
      }
    });
  }

  for (const granularity of ['task', 'layer'] as const) {
    it(`${granularity}-wise clamp: λ outside [0, 1] builds the clamped weights and has zero gradient`, () => {
      const p = problem(granularity, 2, 1);
      try {
        const { layout } = p.model;
        const raw = spreadLambda(lambdaSize(layout), 4);
        const outside = new Set<number>();
        for (let i = 0; i < raw.length; i += 3) {
          raw[i] = i % 2 ? 1.7 : -0.4;
          outside.add(i);
        }
        const clamped = clampLambda(raw);
        assert.deepEqual(
          [...clamped].filter((_, i) => outside.has(i)).sort(),
          [...outside].map((i) => (i % 2 ? 1 : 0)).sort(),
        );
        const build = (l: Float32Array) => {
          const lam = tf.tensor1d(l);
          const m = mergedParams(layout, p.model.base, p.model.taskVectors, lam);
          const out = Object.fromEntries(Object.entries(m).map(([n, t]) => [n, t.dataSync().slice()]));
          tf.dispose([lam, ...Object.values(m)]);
          return out;
        };
        assert.deepEqual(build(raw), build(clamped));
        const { grad } = entropyLossAndGrad(p.model, p.heads, raw, p.batches);
        let inside = 0;
        for (let i = 0; i < raw.length; i++) {
          if (outside.has(i))
            assert.ok(grad[i] === 0, `λ[${i}] = ${raw[i]} is clamped: its gradient must be 0, got ${grad[i]}`);
          else inside += Math.abs(grad[i]);
        }
        assert.ok(inside > 0, 'λ inside [0, 1] must have a gradient');
        // clamp off: the raw values are used and every λ has a gradient
        const free = entropyLossAndGrad({ ...p.model, clamp: false }, p.heads, raw, p.batches);
        assert.ok([...outside].every((i) => free.grad[i] !== 0));
      } finally {
        p.dispose();
      }
    });
  }
});

describe('AdaMerging batches', () => {
  const plan: BatchPlan = { seed: 9, rows: 10, batchSize: 3, batchesPerTask: 2 };

  it('same (seed, step, task) gives the same rows; steps, tasks and seeds differ', () => {
    assert.deepEqual(stepBatches(plan, 'mnist', 4), stepBatches(plan, 'mnist', 4));
    assert.notDeepEqual(stepBatches(plan, 'mnist', 4), stepBatches(plan, 'mnist', 5));
    assert.notDeepEqual(stepBatches(plan, 'mnist', 0), stepBatches(plan, 'mnist', 1));
    assert.notDeepEqual(stepBatches(plan, 'mnist', 4), stepBatches(plan, 'svhn', 4));
    assert.notDeepEqual(stepBatches(plan, 'mnist', 4), stepBatches({ ...plan, seed: 10 }, 'mnist', 4));
    const b = stepBatches(plan, 'mnist', 7);
    assert.equal(b.length, 2);
    assert.ok(b.every((r) => r.length === 3 && r.every((x) => x >= 0 && x < 10)));
  });

  it('a step computed fresh equals the one reached by stepping through 0..t−1, and the stream is epoch permutations', () => {
    const T = 13; // 13 steps × 6 rows = 7.8 epochs of 10 rows: steps straddle epoch ends
    const cursor = new BatchRowCursor(plan, 'mnist');
    const walked: number[] = [];
    for (let t = 0; t < T; t++) {
      const rows = cursor.batches(t);
      assert.deepEqual(rows, stepBatches(plan, 'mnist', t), `step ${t}`);
      for (const r of rows) walked.push(...r);
    }
    // the same rows as a sequential replay (rowStream-style): epoch e is a permutation of all rows
    const replay: number[] = [];
    for (let e = 0; replay.length < walked.length; e++) replay.push(...epochOrder(plan.seed, 'mnist', plan.rows, e));
    assert.deepEqual(walked, replay.slice(0, walked.length));
    for (let e = 0; e < 7; e++) {
      assert.deepEqual(
        [...walked.slice(e * 10, e * 10 + 10)].sort((a, b) => a - b),
        [...Array(10).keys()],
      );
    }
    // a cursor that jumps back and forth agrees too
    const jumpy = new BatchRowCursor(plan, 'mnist');
    for (const t of [12, 3, 3, 0, 9]) assert.deepEqual(jumpy.batches(t), stepBatches(plan, 'mnist', t));
  });

  it('rejects bad plans and steps', () => {
    assert.throws(() => stepBatches({ ...plan, rows: 0 }, 'a', 0), /rows must be a positive integer/);
    assert.throws(() => stepBatches(plan, 'a', -1), /step must be a non-negative integer/);
  });
});

/** TIES per task written the plain way: sort, sum, compare. */
function tiesReference(tvs: number[][][], keep: number): { vectors: number[][][]; thresholds: number[] } {
  const thresholds = tvs.map((tv) => {
    const mags = tv
      .flat()
      .map(Math.abs)
      .sort((a, b) => a - b);
    const d = mags.length;
    const k = d - Math.floor(d * keep);
    return keep >= 1 ? 0 : mags[k - 1];
  });
  const trimmed = tvs.map((tv, k) => tv.map((t) => t.map((v) => (Math.abs(v) >= thresholds[k] ? v : 0))));
  const sums = trimmed[0].map((t, l) => t.map((_, i) => trimmed.reduce((a, tk) => Math.fround(a + tk[l][i]), 0)));
  const majority = Math.sign(sums.flat().reduce((a, s) => a + Math.sign(s), 0));
  const vectors = trimmed.map((tk) =>
    tk.map((t, l) =>
      t.map((v, i) => {
        const s = sums[l][i] > 0 ? 1 : sums[l][i] < 0 ? -1 : majority;
        return (s > 0 ? v > 0 : v < 0) ? v : 0;
      }),
    ),
  );
  return { vectors, thresholds };
}

describe('AdaMerging++ task vectors', () => {
  it('a constructed case: trim over all tensors together, ties kept, elect, keep per task (not summed)', () => {
    // 3 tasks, 2 tensors (4 + 1 entries, d = 5); keep 0.4 -> k = 5 - 2 = 3: the 3rd smallest magnitude.
    const tvs = [
      [[0.5, -0.25, 1, 0.125], [-2]],
      [[-0.5, 0.5, 0.25, 0.75], [1]],
      [[0.5, -1, -0.125, 0.5], [0.25]],
    ];
    const got = tiesTaskVectors(
      tvs.map((tv) => tv.map((t) => Float32Array.from(t))),
      0.4,
    );
    // thresholds: task0 |.| sorted .125 .25 .5 1 2 -> .5; task1 .25 .5 .5 .75 1 -> .5 (tie kept); task2 .125 .25 .5 .5 1 -> .5
    assert.deepEqual(got.thresholds, [0.5, 0.5, 0.5]);
    // trimmed: t0 [.5, 0, 1, 0 | -2]  t1 [-.5, .5, 0, .75 | 1]  t2 [.5, -1, 0, .5 | 0]
    // sums:        [.5, -.5, 1, 1.25 | -1]  -> signs + - + + -
    assert.deepEqual(
      got.vectors.map((tv) => tv.map((t) => [...t])),
      [
        [[0.5, 0, 1, 0], [-2]],
        [[0, 0, 0, 0.75], [0]],
        [[0.5, -1, 0, 0.5], [0]],
      ],
    );
    assert.deepEqual(
      got.vectors.map((tv) => tv.map((t) => [...t])),
      tiesReference(tvs, 0.4).vectors,
    );
  });

  it('a zero sum takes the majority sign; random vectors equal the plain reference and sum to TIES (scaling 1)', () => {
    // entry 0 of tensor 0 sums to exactly 0; the other entries are mostly positive -> majority +1 keeps +0.5
    const zero = tiesTaskVectors([[Float32Array.of(0.5, 1, 1)], [Float32Array.of(-0.5, 1, 1)]], 1);
    assert.equal(zero.majoritySign, 1);
    assert.deepEqual([...zero.vectors[0][0], ...zero.vectors[1][0]], [0.5, 1, 1, 0, 1, 1]);

    const rng = rngFor(5, 'ties');
    const lens = [7, 30, 1, 12];
    const tvs = Array.from({ length: 4 }, () =>
      lens.map((n) => Float32Array.from({ length: n }, () => normalish(rng))),
    );
    for (const keep of [0.2, 0.5, 1]) {
      const got = tiesTaskVectors(tvs, keep);
      const ref = tiesReference(
        tvs.map((tv) => tv.map((t) => [...t])),
        keep,
      );
      assert.deepEqual(got.thresholds, ref.thresholds.map(Math.fround));
      assert.deepEqual(
        got.vectors.map((tv) => tv.map((t) => [...t])),
        ref.vectors,
      );
      lens.forEach((n, l) => {
        const merged = tiesMergeTensor(
          new Float32Array(n),
          tvs.map((tv) => tv[l]),
          got.thresholds,
          got.majoritySign,
          { scaling: 1, keep, merge: 'sum' },
        );
        const summed = new Float32Array(n);
        for (const tv of got.vectors) for (let i = 0; i < n; i++) summed[i] += tv[l][i];
        assert.deepEqual(summed, merged, `keep ${keep}, tensor ${l}`);
      });
    }
    assert.equal(taskVectorThreshold([Float32Array.of(3, -1, 2)], 1), 0);
    assert.throws(() => taskVectorThreshold([Float32Array.of(1)], 0), /keep must be in \(0, 1\]/);
  });
});

describe('entropy', () => {
  it('uniform logits give log(classes); one-hot-ish logits give ~0; [0, log 3] gives H(1/4, 3/4)', () => {
    const before = tf.memory().numTensors;
    const h = (values: number[], shape: [number, number]) => {
      const x = tf.tensor2d(values, shape);
      const e = meanEntropy(x);
      const v = e.dataSync()[0];
      tf.dispose([x, e]);
      return v;
    };
    assert.ok(Math.abs(h(Array(4 * 6).fill(3.7), [4, 6]) - Math.log(6)) < 1e-6);
    const onehot = Array.from({ length: 3 * 5 }, (_, i) => (i % 5 === Math.floor(i / 5) ? 60 : 0));
    assert.ok(h(onehot, [3, 5]) < 1e-6);
    const want = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
    assert.ok(Math.abs(h([0, Math.log(3)], [1, 2]) - want) < 1e-6);
    // mean over rows: one uniform row (log 2) and one certain row (0)
    assert.ok(Math.abs(h([1, 1, 80, 0], [2, 2]) - Math.log(2) / 2) < 1e-6);
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('AdaMerging local loop', () => {
  let dir: string;
  const K = 2;
  const ROWS = 12;
  const tasks: { name: string; model: string; head: string; data: string }[] = [];
  let pretrained: string;

  before(async () => {
    dir = tmpDir('adamerging');
    const { base, tvs } = tinyFamily(21, K);
    pretrained = fileUri(path.join(dir, 'pretrained'));
    await writeModel(pretrained, CONFIG, base);
    for (let k = 0; k < K; k++) {
      const params: ParamValues = {};
      for (const n of NAMES) params[n] = Float32Array.from(base[n], (v, i) => v + tvs[k][n][i]);
      const model = fileUri(path.join(dir, `task${k}`));
      await writeModel(model, CONFIG, params);
      const h = headValues(21, k);
      const head = await writeHead(
        fileUri(path.join(dir, `head${k}.safetensors`)),
        { ...h, classes: CLASSES, dim: CONFIG.projectionDim },
        `task${k}`,
        Array.from({ length: CLASSES }, (_, c) => `c${c}`),
      );
      const rng = rngFor(21, 'pixels', k);
      const data = fileUri(path.join(dir, `test${k}.safetensors`));
      // unlabeled: the loop must not need labels
      await writeDataset(data, {
        inputs: Uint8Array.from({ length: ROWS * 64 }, () => Math.floor(256 * rng())),
        shape: [ROWS, 1, 8, 8],
        prep: { mean: [0.5], std: [0.5] },
      });
      tasks.push({ name: `task${k}`, model, head, data });
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const sgd =
    (lr: number): OptimizerStep =>
    (lambda, grad) =>
      Float32Array.from(lambda, (v, i) => v - lr * grad[i]);

  it('SGD steps on all rows (full batch) reduce the entropy loss; tensors do not grow across steps', async (t) => {
    const counts: number[] = [];
    const res = await runAdaMergingLocal({
      pretrained,
      tasks,
      granularity: 'layer',
      steps: 6,
      seed: 3,
      batchSize: ROWS,
      optimizer: sgd(0.5),
      onStep: () => void counts.push(tf.memory().numTensors),
    });
    const total = res.losses.map((l) => l[0] + l[1]);
    t.diagnostic(`loss per step ${total.map((x) => x.toFixed(5)).join(' ')}`);
    t.diagnostic(
      `seconds per step (2 tasks x ${ROWS} rows, layer-wise, ${res.layout.tensors.length} tensors): ` +
        res.secondsPerStep.map((s) => s.toFixed(3)).join(' '),
    );
    for (let s = 1; s < total.length; s++)
      assert.ok(total[s] < total[s - 1], `step ${s}: ${total[s]} >= ${total[s - 1]}`);
    assert.ok(total[0] - total[total.length - 1] > 1e-3, `loss fell only ${total[0] - total[total.length - 1]}`);
    assert.ok(new Set(counts).size === 1, `tensor count changed across steps: ${counts.join(', ')}`);
    assert.ok(
      res.lambda.some((v) => Math.abs(v - Math.fround(0.3)) > 1e-4),
      'λ did not move',
    );
    assert.equal(res.summary.length, K);
  });

  it('extra pool models without inputs join the merge and get their own λ', async () => {
    const res = await runAdaMergingLocal({
      pretrained,
      tasks,
      extraModels: [{ name: 'extra', model: tasks[1].model }],
      granularity: 'task',
      steps: 3,
      seed: 3,
      batchSize: ROWS,
      optimizer: sgd(0.5),
    });
    assert.deepEqual(
      res.summary.map((s) => s.task),
      [...tasks.map((t) => t.name), 'extra'],
    );
    assert.equal(res.losses[0].length, tasks.length, 'one loss per target, none for the extra model');
    assert.ok(Math.abs(res.lambda[K] - Math.fround(0.3)) > 1e-4, "the extra model's λ did not move");
  });

  it('same seed -> bit-identical λ; a run resumed at step 3 equals the uninterrupted run; AdaMerging++ runs', async () => {
    const opts = { pretrained, tasks, granularity: 'task' as const, seed: 5, batchSize: 4, optimizer: sgd(0.5) };
    const a = await runAdaMergingLocal({ ...opts, steps: 5 });
    const b = await runAdaMergingLocal({ ...opts, steps: 5 });
    assert.deepEqual(Buffer.from(a.lambda.buffer), Buffer.from(b.lambda.buffer));
    assert.deepEqual(a.losses, b.losses);
    const head = await runAdaMergingLocal({ ...opts, steps: 3 });
    const tail = await runAdaMergingLocal({ ...opts, steps: 2, from: { step: 3, lambda: head.lambda } });
    assert.deepEqual(Buffer.from(tail.lambda.buffer), Buffer.from(a.lambda.buffer));
    assert.deepEqual([...head.losses, ...tail.losses], a.losses);
    const other = await runAdaMergingLocal({ ...opts, seed: 6, steps: 5 });
    assert.notDeepEqual(other.losses, a.losses);
    const pp = await runAdaMergingLocal({ ...opts, steps: 2, tiesKeep: 0.2 });
    assert.notDeepEqual(pp.losses[0], a.losses[0]);
    assert.ok(pp.lambda.every(Number.isFinite));
  });
});

// entropyLosses is the forward-only twin of entropyLossAndGrad
describe('entropyLosses', () => {
  it('matches the losses entropyLossAndGrad reports', () => {
    const p = problem('task', 2, 2);
    try {
      const lambda = Float32Array.of(0.4, 0.6);
      const a = entropyLosses(p.model, p.heads, lambda, p.batches);
      const b = entropyLossAndGrad(p.model, p.heads, lambda, p.batches).lossPerTask;
      a.forEach((v, k) => assert.ok(Math.abs(v - b[k]) < 1e-6));
    } finally {
      p.dispose();
    }
  });
});
