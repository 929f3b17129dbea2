/**
 * FW-Soft's `step_objective: proxy`: the step sizes minimise cross-entropy on the labeled proxy set instead of
 * entropy. ∂loss/∂λ equals central finite differences on the tiny model, the labels move it, each Adam step
 * reads rows of the iteration's proxy set (seeded by run seed, target, step), and the config is checked strictly.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../core/tensor/backend';
import { ClipVisionConfig, clipVisionParamShapes } from '../core/models/clip_vit';
import { disposeHead } from '../core/models/head';
import { normalish, rngFor } from '../core/data/rng';
import { initParams } from '../core/suite/train';
import { ConfigError, validateConfig } from '../core/config/load';
import { disposeTaskVectorStack, stackTaskVectors } from '../core/merge/adamerging/merged';
import {
  frankWolfeParams,
  ObjectiveTarget,
  objectiveLoss,
  proxyRows,
  softLayout,
  softRows,
  softStepData,
  softStepGradient,
  softStepRows,
  softTaskVectors,
  softUpdate,
} from '../core/merge/frank_wolfe';
import { CLASSES, TINY } from '../core/synthetic_adamerging';
import { tinyLabeledBatch, tinyMemHead } from './helpers/tiny_fw';

const CONFIG: ClipVisionConfig = TINY;
const SHAPES = clipVisionParamShapes(CONFIG);
const NAMES = SHAPES.map((s) => s.name);
const SHAPE_OF = Object.fromEntries(SHAPES.map((s) => [s.name, s.shape]));
type Values = Record<string, Float32Array>;

const memHead = tinyMemHead;

const labeledBatch = tinyLabeledBatch;

const tensorsOf = (v: Values) => Object.fromEntries(NAMES.map((n) => [n, tf.tensor(v[n], SHAPE_OF[n])]));

before(async () => {
  assert.equal(await initBackend('wasm', () => undefined), 'wasm');
});

describe('FW-Soft step sizes on the proxy set', () => {
  it('∂(Σj mean cross-entropy_j)/∂λ equals central finite differences; the labels change it', () => {
    const thetaValues = initParams(CONFIG, 41);
    const selected = [0, 1].map((k) => {
      const rng = rngFor(41, 'selected', k);
      return Object.fromEntries(
        NAMES.map((n) => [n, Float32Array.from(thetaValues[n], (v) => v + 0.5 * normalish(rng))]),
      );
    });
    const vectors = softTaskVectors(thetaValues, selected, NAMES);
    const layout = softLayout(['s0', 's1'], NAMES);
    const rng = rngFor(41, 'lambda');
    const lambda = Float32Array.from({ length: 2 * NAMES.length }, () => 0.3 + 0.1 * normalish(rng));
    const heads = [memHead(41, 0), memHead(41, 1)];
    const targets: ObjectiveTarget[] = [0, 1].map((k) => ({
      name: `t${k}`,
      head: heads[k],
      batches: [labeledBatch(41, k, 0, 4), labeledBatch(41, k, 1, 3)],
    }));
    const theta = tensorsOf(thetaValues);
    const tv = stackTaskVectors(layout, SHAPE_OF, vectors);
    const before = tf.memory().numTensors;
    try {
      const ce = softStepGradient(CONFIG, layout, theta, tv, lambda, targets, { kind: 'cross_entropy' });
      assert.equal(tf.memory().numTensors, before, 'softStepGradient leaked tensors');
      // f(λ) written out: θt + Σs λ_s (θ_s − θt) by the float32 kernel, then the plain forward pass
      const lossAt = (lam: Float32Array) => {
        const params = tensorsOf(softUpdate(thetaValues, vectors, layout, lam));
        try {
          return objectiveLoss(CONFIG, params, targets, { kind: 'cross_entropy', scaleTasks: 1 }).reduce(
            (a, b) => a + b,
          );
        } finally {
          tf.dispose(Object.values(params));
        }
      };
      assert.ok(Math.abs(lossAt(lambda) - ce.loss) <= 1e-5 * Math.max(1, ce.loss), `loss ${ce.loss}`);
      const eps = 1e-2;
      let largest = 0;
      lambda.forEach((_, i) => {
        const moved = (d: number) => Float32Array.from(lambda, (v, k) => (k === i ? v + d : v));
        const numeric = (lossAt(moved(eps)) - lossAt(moved(-eps))) / (2 * eps);
        largest = Math.max(largest, Math.abs(numeric));
        assert.ok(
          Math.abs(numeric - ce.grad[i]) <= 1e-3 + 1e-2 * Math.abs(numeric),
          `λ[${i}] (${layout.tasks[Math.floor(i / NAMES.length)]}, ${NAMES[i % NAMES.length]}): analytic ${ce.grad[i]} vs numeric ${numeric}`,
        );
      });
      assert.ok(largest > 1e-2, `vacuous: the largest |∂/∂λ| is ${largest}`);
      // the labels enter: other labels give another gradient; entropy (no labels) another still
      const relabeled = targets.map((t) => ({
        ...t,
        batches: t.batches.map((b) => ({ ...b, labels: b.labels!.map((y) => (y + 1) % CLASSES) })),
      }));
      const other = softStepGradient(CONFIG, layout, theta, tv, lambda, relabeled, { kind: 'cross_entropy' });
      const ent = softStepGradient(CONFIG, layout, theta, tv, lambda, targets, { kind: 'entropy' });
      const gap = (a: Float32Array, b: Float32Array) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
      assert.ok(gap(ce.grad, other.grad) > 1e-2, 'relabeling changed nothing');
      assert.ok(gap(ce.grad, ent.grad) > 1e-2, 'cross-entropy equals entropy');
    } finally {
      disposeTaskVectorStack(tv);
      tf.dispose(Object.values(theta));
      heads.forEach(disposeHead);
    }
  });

  it("each Adam step reads B rows of the iteration's proxy set, seeded by (seed, target, step); entropy as before", () => {
    const p = frankWolfeParams.parse({
      variant: 'soft',
      step_objective: 'proxy',
      proxy_samples: 20,
      adamerging_batch_size: 6,
      adamerging_steps: 10,
      seed: 4,
    });
    const N = 500;
    for (const t of [0, 2]) {
      const set = new Set(proxyRows(p.seed, 'a', N, p.proxy_samples, t));
      const at = softStepRows(p, 'a', N, t);
      const steps = Array.from({ length: 10 }, (_, s) => at(s));
      for (const rows of steps) {
        assert.equal(rows.length, 6);
        for (const r of rows) assert.ok(set.has(r), `iteration ${t}: row ${r} is not in the proxy set`);
      }
      assert.deepEqual(softStepRows(p, 'a', N, t)(7), steps[7], 'the same rows when asked again');
      assert.notDeepEqual(steps[0], steps[1]);
      // 10 steps × 6 rows walk the 20-row set three times: every proxy row is used
      assert.equal(new Set(steps.flatMap((r) => Array.from(r))).size, 20);
    }
    assert.notDeepEqual(softStepRows(p, 'a', N, 0)(0), softStepRows(p, 'b', N, 0)(0), 'targets draw apart');
    assert.notDeepEqual(softStepRows(p, 'a', N, 0)(0), softStepRows({ ...p, seed: 5 }, 'a', N, 0)(0), 'seeds apart');
    const e = { ...p, step_objective: 'entropy' as const };
    assert.deepEqual(softStepRows(e, 'a', N, 2)(3), softRows(p.seed, 'a', N, 6, 2 * 10 + 3));
    const target = { proxy: 's3://b/train.safetensors', data: 's3://b/test.safetensors' };
    assert.deepEqual(softStepData(p, target), { uri: target.proxy, what: 'proxy (labeled)', labeled: true });
    assert.deepEqual(softStepData(e, target), { uri: target.data, what: 'unlabeled', labeled: false });
  });
});

describe('step_objective in the config', () => {
  const doc = (parameters: Record<string, unknown>, target: Record<string, string>) => ({
    method: 'frank_wolfe',
    base: 's3://b/pretrained',
    pool: [
      { name: 'a', checkpoint: 's3://b/a' },
      { name: 'b', checkpoint: 's3://b/b' },
    ],
    targets: [{ name: 'a', head: 's3://b/head-a.safetensors', ...target }],
    output: 's3://b/out',
    parameters: { variant: 'soft', ...parameters },
  });
  const train = { proxy: 's3://b/train.safetensors' };
  const test = { data: 's3://b/test.safetensors' };

  it('defaults to entropy; proxy needs the proxy set and not the test inputs', () => {
    const d = validateConfig(doc({}, { ...train, ...test }), 'x');
    assert.ok(d.method === 'frank_wolfe' && d.parameters.step_objective === 'entropy');
    const p = validateConfig(doc({ step_objective: 'proxy' }, train), 'x');
    assert.ok(p.method === 'frank_wolfe' && p.parameters.step_objective === 'proxy');
  });

  it('an unknown value, a missing proxy set or (entropy) missing test inputs: refused naming the field and the fix', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        doc({ step_objective: 'cross_entropy' }, { ...train, ...test }),
        /parameters\.step_objective: expected one of "entropy"\|"proxy"/,
      ],
      [doc({ step_objective: 'proxy', objective: 'entropy' }, test), /targets\.0\.proxy: .*step_objective proxy/],
      [doc({}, train), /targets\.0\.data: target 'a' has no data: FW-Soft's step sizes need .*step_objective=proxy/],
    ];
    for (const [d, pattern] of bad)
      assert.throws(
        () => validateConfig(d, 'x'),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
        String(pattern),
      );
  });
});
