/** FW-Merging as pure core code: objective gradient, streamed oracle, FW-Hard against a float64 reference, FW-Soft. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../core/tensor/backend';
import { clipVisionForward, ClipVisionConfig, clipVisionParamShapes } from '../core/models/clip_vit';
import { disposeHead, headLogits } from '../core/models/head';
import { normalish, rngFor } from '../core/data/rng';
import { writeDataset } from '../core/data/dataset';
import { initParams, ParamValues } from '../core/suite/train';
import { writeHead, writeModel } from '../core/suite/io';
import { fromFloat32, writeTensors } from '../core/safetensors';
import { linearMergeTensor, tableColumn } from '../core/merge/coefficients';
import {
  accumulateCandidate,
  accumulateGrad,
  checkpointSource,
  memorySource,
  emptyScores,
  frankWolfeParams,
  hardUpdate,
  hardUpdateTable,
  learnSoftStepSizes,
  mergeScores,
  ObjectiveTarget,
  objectiveGradient,
  objectiveGradientPerTarget,
  objectiveLoss,
  OracleScores,
  proxyRows,
  resolveStart,
  runFrankWolfeLocal,
  scoreCandidates,
  selectLayerWise,
  selectTaskWise,
  softInit,
  softLayout,
  softSelect,
  softTaskVectors,
  softUpdate,
  taskScores,
} from '../core/merge/frank_wolfe';
import { CLASSES as TINY_CLASSES, TINY, tinyHeadValues } from '../core/synthetic_adamerging';
import { tinyLabeledBatch, tinyMemHead } from './helpers/tiny_fw';
import { fileUri, s3Prefix, tmpDir } from './helpers/env';

const CONFIG: ClipVisionConfig = TINY; // the tiny CLIP ViT shared with the AdaMerging fixtures
const SHAPES = clipVisionParamShapes(CONFIG);
const NAMES = SHAPES.map((s) => s.name);
const SHAPE_OF = Object.fromEntries(SHAPES.map((s) => [s.name, s.shape]));
const CLASSES = TINY_CLASSES;

type Values = Record<string, Float32Array>;

function randomValues(seed: number, label: string, scale = 1): Values {
  const out: Values = {};
  for (const n of NAMES) {
    const rng = rngFor(seed, label, n);
    out[n] = Float32Array.from({ length: SHAPE_OF[n].reduce((a, b) => a * b, 1) }, () => scale * normalish(rng));
  }
  return out;
}

/** Plain float64 Σp cos(g_p, θ_p), written out. */
function plainTaskScore(g: Values, theta: Values): number {
  let sum = 0;
  for (const n of NAMES) sum += plainCos(g[n], theta[n]);
  return sum;
}

function plainCos(g: ArrayLike<number>, t: ArrayLike<number>): number {
  let dot = 0;
  let gg = 0;
  let tt = 0;
  for (let i = 0; i < g.length; i++) {
    dot += g[i] * t[i];
    gg += g[i] * g[i];
    tt += t[i] * t[i];
  }
  return dot / Math.sqrt(gg * tt);
}

/** v minus its projection on g: orthogonal to g (cos ≈ 0 up to float32 rounding). */
function orthogonal(v: Float32Array, g: Float32Array): Float32Array {
  let dot = 0;
  let gg = 0;
  for (let i = 0; i < g.length; i++) {
    dot += v[i] * g[i];
    gg += g[i] * g[i];
  }
  return Float32Array.from(v, (x, i) => x - (dot / gg) * g[i]);
}

async function writeCandidate(uri: string, values: Values): Promise<string> {
  await writeTensors(
    uri,
    SHAPES.map(({ name, shape }) => ({ name, dtype: 'F32' as const, shape, data: fromFloat32(values[name], 'F32') })),
  );
  return uri;
}

const headValues = (seed: number, k: number) => tinyHeadValues(seed, k, CONFIG);

const memHead = tinyMemHead;

const labeledBatch = tinyLabeledBatch;

function tensorsOf(values: Values): Record<string, tf.Tensor> {
  return Object.fromEntries(NAMES.map((n) => [n, tf.tensor(values[n], SHAPE_OF[n])]));
}

before(async () => {
  assert.equal(await initBackend('wasm', () => undefined), 'wasm');
});

describe('FW parameters', () => {
  it('defaults as the spec; the start depends on the variant; a bad start is refused', () => {
    const p = frankWolfeParams.parse({});
    assert.deepEqual(
      [p.variant, p.oracle, p.objective, p.local_merge, p.iterations, p.step_size, p.scaling, p.keep],
      ['hard', 'task', 'cross_entropy', 'ta', 10, 0.1, 0.3, 0.2],
    );
    assert.deepEqual([p.proxy_samples, p.adamerging_steps, p.seed], [100, 500, 0]);
    assert.equal(resolveStart(p), 'ta');
    assert.equal(resolveStart(frankWolfeParams.parse({ variant: 'soft' })), 'pretrained');
    assert.equal(resolveStart(frankWolfeParams.parse({ start: 's3://b/merged' })), 's3://b/merged');
    assert.throws(() => frankWolfeParams.parse({ start: 'tie' }), /expected ta, ties, pretrained, or a saved merge/);
    assert.throws(() => frankWolfeParams.parse({ iterations: 0 }));
    assert.throws(() => frankWolfeParams.parse({ stepsize: 1 }), /expected only/);
  });
});

describe('FW oracle (streamed)', () => {
  let dir: string;
  const g = randomValues(3, 'g');
  // by construction: cos(g_p, −2g_p + small noise) ≈ −1, cos(g_p, g_p) = 1, cos(g_p, orth_p) ≈ 0 on every tensor
  const noise = randomValues(3, 'noise', 1e-3);
  const cands: Record<string, Values> = {
    'b-pos': Object.fromEntries(NAMES.map((n) => [n, Float32Array.from(g[n])])),
    'c-orth': Object.fromEntries(NAMES.map((n) => [n, orthogonal(randomValues(3, 'o')[n], g[n])])),
    'a-neg': Object.fromEntries(NAMES.map((n) => [n, Float32Array.from(g[n], (v, i) => -2 * v + noise[n][i])])),
  };
  const uris: Record<string, string> = {};
  before(async () => {
    dir = tmpDir('fw-oracle');
    for (const [name, v] of Object.entries(cands))
      uris[name] = await writeCandidate(fileUri(path.join(dir, `${name}.safetensors`)), v);
    uris['z-twin'] = await writeCandidate(fileUri(path.join(dir, 'z-twin.safetensors')), cands['a-neg']);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('task-wise: picks the −g candidate from file://, scores equal a plain float64 Σp cos, each tensor read once', async () => {
    const order = ['b-pos', 'c-orth', 'a-neg'];
    const reads: string[] = [];
    const s = await scoreCandidates(
      g,
      NAMES,
      order.map((n) => checkpointSource(n, uris[n])),
      { onTensor: (c, t) => reads.push(`${c}/${t}`) },
    );
    assert.equal(reads.length, order.length * NAMES.length);
    assert.equal(new Set(reads).size, reads.length);
    const sel = selectTaskWise(s);
    assert.equal(sel.candidate, 'a-neg');
    const P = NAMES.length;
    order.forEach((n, m) => {
      const want = plainTaskScore(g, cands[n]);
      assert.ok(Math.abs(sel.scores[m] - want) < 1e-9, `${n}: ${sel.scores[m]} vs ${want}`);
    });
    assert.ok(sel.scores[2] < -0.99 * P && sel.scores[0] > 0.99 * P && Math.abs(sel.scores[1]) < 1e-3 * P);
  });

  it('task vectors: candidates scored as θm − θ0 (base read once per tensor); full weights barely tell them apart', async () => {
    // a base 30× larger than the candidates' differences, as a pretrained model is next to its fine-tunes
    const theta0 = randomValues(5, 'theta0', 30);
    const full = Object.fromEntries(
      Object.entries(cands).map(([name, tv]) => [
        name,
        Object.fromEntries(NAMES.map((n) => [n, Float32Array.from(tv[n], (v, i) => theta0[n][i] + v)])),
      ]),
    );
    const order = ['b-pos', 'c-orth', 'a-neg'];
    let baseReads = 0;
    const base = memorySource('base', theta0);
    const counted = { name: 'base', read: (t: string) => (baseReads++, base.read(t)) };
    const sources = order.map((n) => memorySource(n, full[n]));
    const tv = taskScores(await scoreCandidates(g, NAMES, sources, {}, counted));
    assert.equal(baseReads, NAMES.length, 'the base is read once per tensor');
    order.forEach((n, m) => {
      const want = plainTaskScore(g, cands[n]);
      assert.ok(Math.abs(tv[m] - want) < 1e-4, `${n}: ${tv[m]} vs plain Σp cos(g, τ) ${want}`);
    });
    assert.equal(order[tv.indexOf(Math.min(...tv))], 'a-neg');
    const w = taskScores(await scoreCandidates(g, NAMES, sources));
    const spread = (v: number[]) => Math.max(...v) - Math.min(...v);
    assert.ok(
      spread(w) < 0.1 * spread(tv),
      `full weights spread ${spread(w)} should be far below the task vectors' ${spread(tv)}`,
    );
  });

  it('task-wise ties go to the name that sorts first, whatever the pool order; exclusion skips a name', async () => {
    const order = ['z-twin', 'b-pos', 'a-neg'];
    const s = await scoreCandidates(
      g,
      NAMES,
      order.map((n) => checkpointSource(n, uris[n])),
    );
    const scores = taskScores(s);
    assert.equal(scores[0], scores[2], 'identical candidates must score identically');
    assert.equal(selectTaskWise(s).candidate, 'a-neg');
    assert.equal(selectTaskWise(s, new Set(['a-neg'])).candidate, 'z-twin');
    assert.throws(() => selectTaskWise(s, new Set(order)), /every candidate is excluded/);
  });

  it('shards over tensors (and over an element range) sum to the one-pass scores', async () => {
    const sources = () => ['a-neg', 'b-pos', 'c-orth'].map((n) => checkpointSource(n, uris[n]));
    const whole = await scoreCandidates(g, NAMES, sources());
    const half = Math.floor(NAMES.length / 2);
    const parts = [
      await scoreCandidates(g, NAMES.slice(half), sources()),
      await scoreCandidates(g, NAMES.slice(0, half), sources()),
    ];
    const merged = mergeScores(NAMES, parts);
    assert.deepEqual(merged, whole);
    // one tensor split into two element ranges: partial sums add up
    const big = NAMES.reduce((a, n) => (g[n].length > g[a].length ? n : a), NAMES[0]);
    const cut = Math.floor(g[big].length / 3);
    const ranges = [0, 1].map((r) => {
      const s = emptyScores(['a-neg'], [big]);
      const sl = (x: Float32Array) => (r === 0 ? x.subarray(0, cut) : x.subarray(cut));
      accumulateGrad(s, 0, sl(g[big]));
      accumulateCandidate(s, 0, 0, sl(g[big]), sl(cands['a-neg'][big]));
      return s;
    });
    const split = mergeScores([big], ranges);
    const p = NAMES.indexOf(big);
    const P = NAMES.length;
    assert.ok(Math.abs(split.dot[0] - whole.dot[p]) <= 1e-12 * Math.abs(whole.dot[p]));
    assert.ok(Math.abs(split.candSq[0] - whole.candSq[p]) <= 1e-12 * whole.candSq[p]);
    assert.ok(Math.abs(split.gradSq[0] - whole.gradSq[p]) <= 1e-12 * whole.gradSq[p]);
    assert.equal(whole.dot.length, 3 * P);
  });

  it('layer-wise: a composite of the per-tensor −g candidate; where none is negative, argmin or θt', async () => {
    // x is −g on even tensors, +g on odd ones; y the opposite at half the size; on the last tensor both are
    // positive (x = g, y = g + orthogonal part: cos(y) < cos(x) = 1)
    const last = NAMES.length - 1;
    const orth = randomValues(5, 'orth');
    const x: Values = {};
    const y: Values = {};
    NAMES.forEach((n, p) => {
      const sign = p % 2 === 0 ? -1 : 1;
      x[n] = Float32Array.from(g[n], (v) => (p === last ? v : sign * v));
      const o = orthogonal(orth[n], g[n]);
      y[n] = Float32Array.from(g[n], (v, i) => (p === last ? v + o[i] : -0.5 * sign * v));
    });
    const ux = await writeCandidate(fileUri(path.join(dir, 'x.safetensors')), x);
    const uy = await writeCandidate(fileUri(path.join(dir, 'y.safetensors')), y);
    const s = await scoreCandidates(g, NAMES, [checkpointSource('y', uy), checkpointSource('x', ux)]);
    const want = NAMES.map((_, p) => (p === last ? 'y' : p % 2 === 0 ? 'x' : 'y'));
    const arg = selectLayerWise(s);
    assert.deepEqual(arg.candidate, want);
    assert.equal(arg.fallbacks, 1);
    NAMES.forEach((n, p) => {
      const ref = plainCos(g[n], (want[p] === 'x' ? x : y)[n]);
      assert.ok(Math.abs(arg.cos[p] - ref) < 1e-9, `${n}: ${arg.cos[p]} vs ${ref}`);
    });
    const cur = selectLayerWise(s, { fallback: 'current' });
    assert.deepEqual(cur.candidate, [...want.slice(0, last), null]);
    assert.equal(cur.choice[last], -1);
    // excluding x on tensor 0 leaves y there, only there
    const ex = selectLayerWise(s, { exclude: [new Set(['x'])] });
    assert.deepEqual(ex.candidate, ['y', ...want.slice(1)]);
  });

  it('through s3:// the scores and the picks are the same as from file://', async () => {
    const prefix = s3Prefix('fw-oracle');
    const order = ['b-pos', 'c-orth', 'a-neg'];
    const s3 = await Promise.all(order.map((n) => writeCandidate(`${prefix}/${n}.safetensors`, cands[n])));
    const fromS3 = await scoreCandidates(
      g,
      NAMES,
      order.map((n, m) => checkpointSource(n, s3[m])),
    );
    const fromFile = await scoreCandidates(
      g,
      NAMES,
      order.map((n) => checkpointSource(n, uris[n])),
    );
    assert.deepEqual(fromS3, fromFile);
    assert.equal(selectTaskWise(fromS3).candidate, 'a-neg');
  });
});

describe('FW objective', () => {
  it('∂f/∂θ of the cross-entropy objective equals central finite differences; batching does not change it', (t) => {
    const theta = tensorsOf(initParams(CONFIG, 7));
    const heads = [memHead(7, 0), memHead(7, 1)];
    const targets: ObjectiveTarget[] = [0, 1].map((k) => ({
      name: `t${k}`,
      head: heads[k],
      batches: [labeledBatch(7, k, 0, 3), labeledBatch(7, k, 1, 2)],
    }));
    const before = tf.memory().numTensors;
    try {
      const o = { kind: 'cross_entropy' as const };
      const g = objectiveGradient(CONFIG, theta, NAMES, targets, o);
      assert.equal(tf.memory().numTensors, before, 'objectiveGradient leaked tensors');
      const loss = objectiveLoss(CONFIG, theta, targets, o);
      loss.forEach((l, j) => assert.ok(Math.abs(l - g.lossPerTarget[j]) < 1e-6));
      // the 4 largest |g| entries over all tensors, and 2 seeded ones
      const all = NAMES.flatMap((n) => Array.from(g.grad[n], (v, i) => ({ n, i, v })));
      all.sort((a, b) => Math.abs(b.v) - Math.abs(a.v));
      const rng = rngFor(7, 'coords');
      const coords = [...all.slice(0, 4), ...[0, 1].map(() => all[Math.floor(rng() * all.length)])];
      const eps = 1e-2;
      for (const { n, i, v } of coords) {
        const at = (d: number) => {
          const vals = theta[n].dataSync().slice() as Float32Array;
          vals[i] += d;
          const moved = { ...theta, [n]: tf.tensor(vals, SHAPE_OF[n]) };
          const f = objectiveLoss(CONFIG, moved, targets, o).reduce((a, b) => a + b, 0);
          moved[n].dispose();
          return f;
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        assert.ok(
          Math.abs(numeric - v) <= 5e-3 * Math.max(0.05, Math.abs(numeric)),
          `${n}[${i}]: analytic ${v} vs numeric ${numeric}`,
        );
      }
      assert.ok(Math.abs(all[0].v) > 1e-2, `vacuous: max |g| ${all[0].v}`);
      t.diagnostic(`max |g| ${Math.abs(all[0].v).toFixed(4)} at ${all[0].n}[${all[0].i}]`);
      // batch-1 rows (the reference's loop) give the same g; per-target g's sum to g
      const single = targets.map((tg) => ({
        ...tg,
        batches: tg.batches.flatMap((b) =>
          Array.from({ length: b.shape[0] }, (_, r) => ({
            inputs: b.inputs.slice(r * 64, (r + 1) * 64),
            shape: [1, 1, 8, 8] as [number, number, number, number],
            labels: b.labels!.slice(r, r + 1),
          })),
        ),
      }));
      const g1 = objectiveGradient(CONFIG, theta, NAMES, single, o);
      const per = objectiveGradientPerTarget(CONFIG, theta, NAMES, targets, o);
      for (const n of NAMES) {
        g.grad[n].forEach((v, i) => {
          assert.ok(Math.abs(v - g1.grad[n][i]) <= 1e-6 + 1e-5 * Math.abs(v), `batch-1 ${n}[${i}]`);
          assert.ok(Math.abs(v - (per[0].grad[n][i] + per[1].grad[n][i])) <= 1e-6 + 1e-5 * Math.abs(v));
        });
      }
      assert.equal(tf.memory().numTensors, before);
    } finally {
      tf.dispose(Object.values(theta));
      heads.forEach(disposeHead);
    }
  });
});

describe('FW-Hard update', () => {
  it('TA as a coefficient table over θt equals hardUpdate; TIES with keep 1 equals TA bit for bit', () => {
    const theta = randomValues(9, 'theta');
    const pool = [randomValues(9, 'm0'), randomValues(9, 'm1')];
    const choice = NAMES.map((_, p) => (p % 3 === 2 ? -1 : p % 2));
    const target = Object.fromEntries(NAMES.map((n, p) => [n, choice[p] < 0 ? undefined : pool[choice[p]][n]]));
    const a = 0.03;
    const ta = hardUpdate(theta, target, NAMES, { localMerge: 'ta', a });
    const table = hardUpdateTable(choice, pool.length, a);
    NAMES.forEach((n, p) => {
      const col = tableColumn(table, pool.length, NAMES.length, p);
      assert.deepEqual(
        col.map((c, m) => (c === 0 ? -1 : m)).filter((m) => m >= 0),
        choice[p] < 0 ? [] : [choice[p]],
      );
      // the kernel on the column's non-zero rows (what the update reads) is the update bit for bit
      const rows = col.flatMap((c, m) => (c === 0 ? [] : [m]));
      assert.deepEqual(
        linearMergeTensor(
          theta[n],
          rows.map((m) => pool[m][n]),
          rows.map((m) => col[m]),
        ),
        ta[n],
        n,
      );
      // over the whole pool (zero rows included) the kernel rounds a·(m − θ) once more: equal within float32 rounding
      const full = linearMergeTensor(
        theta[n],
        pool.map((m) => m[n]),
        col,
      );
      full.forEach((v, i) => assert.ok(Math.abs(v - ta[n][i]) <= 2 ** -22 * Math.max(1, Math.abs(v)), `${n}[${i}]`));
      if (choice[p] < 0) assert.deepEqual(ta[n], theta[n]);
    });
    assert.deepEqual(hardUpdate(theta, target, NAMES, { localMerge: 'ties', a, keep: 1 }), ta);
  });
});

describe('FW local loop', () => {
  let dir: string;
  const K = 3;
  const ROWS = 10;
  const pool: { name: string; model: string }[] = [];
  const targets: { name: string; head: string; proxy: string; data: string }[] = [];
  let pretrained: string;
  let base: ParamValues;
  const models: ParamValues[] = [];

  before(async () => {
    dir = tmpDir('fw-local');
    base = initParams(CONFIG, 21);
    pretrained = fileUri(path.join(dir, 'pretrained'));
    await writeModel(pretrained, CONFIG, base);
    for (let k = 0; k < K; k++) {
      const tv = randomValues(21, `tv${k}`, 0.3);
      const params: ParamValues = {};
      for (const n of NAMES) params[n] = Float32Array.from(base[n], (v, i) => v + tv[n][i]);
      models.push(params);
      const model = fileUri(path.join(dir, `m${k}`));
      await writeModel(model, CONFIG, params);
      pool.push({ name: `m${k}`, model });
    }
    for (let j = 0; j < 2; j++) {
      const head = await writeHead(
        fileUri(path.join(dir, `head${j}.safetensors`)),
        headValues(21, j),
        `t${j}`,
        Array.from({ length: CLASSES }, (_, c) => `c${c}`),
      );
      const rng = rngFor(21, 'pixels', j);
      const write = (file: string, labels: boolean) =>
        writeDataset(fileUri(path.join(dir, file)), {
          inputs: Uint8Array.from({ length: ROWS * 64 }, () => Math.floor(256 * rng())),
          shape: [ROWS, 1, 8, 8],
          labels: labels ? Int32Array.from({ length: ROWS }, () => Math.floor(rng() * CLASSES)) : undefined,
          prep: { mean: [0.5], std: [0.5], classes: CLASSES },
        });
      const proxy = (await write(`train${j}.safetensors`, true)).uri;
      const data = (await write(`test${j}.safetensors`, false)).uri;
      targets.push({ name: `t${j}`, head, proxy, data });
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * One FW-Hard iteration written the plain way: TA start in float64, g by tf.grads of the summed scaled
   * cross-entropy over all proxy rows at once, Σp cos in float64 over the pool + the start, the update in float64.
   */
  async function referenceIteration(oracle: 'task' | 'layer', localMerge: 'ta' | 'ties', samples: number) {
    const start: Values = {};
    for (const n of NAMES)
      start[n] = Float32Array.from(base[n], (b, i) => b + 0.3 * models.reduce((a, m) => a + (m[n][i] - b), 0));
    const { openDataset } = await import('../core/data/dataset');
    const heads = [0, 1].map((j) => memHead(21, j));
    const theta = tensorsOf(start);
    const batches = await Promise.all(
      targets.map(async (t) => {
        const ds = await openDataset(t.proxy);
        return ds.readRows(proxyRows(0, t.name, ds.n, samples, 0));
      }),
    );
    const xs = NAMES.map((n) => theta[n]);
    const grads = tf.grads((...ts: tf.Tensor[]) => {
      const params = Object.fromEntries(NAMES.map((n, l) => [n, ts[l]]));
      const terms = batches.map((b, j) => {
        const logp = tf.logSoftmax(
          headLogits(heads[j], clipVisionForward(params, CONFIG, tf.tensor4d(b.inputs, b.shape))),
        );
        const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(b.labels!, 'int32'), CLASSES)));
        return tf.div(tf.neg(picked), samples * targets.length);
      });
      return tf.addN(terms) as tf.Scalar;
    })(xs);
    const g: Values = Object.fromEntries(NAMES.map((n, l) => [n, grads[l].dataSync() as Float32Array]));
    tf.dispose([...grads, ...xs]);
    heads.forEach(disposeHead);
    const cands = [...models.map((m) => m as Values), start];
    const names = [...pool.map((p) => p.name), 'start'];
    const pickMin = (score: (m: number) => number) => {
      let best = 0;
      for (let m = 1; m < cands.length; m++) if (score(m) < score(best)) best = m;
      return best;
    };
    const choice =
      oracle === 'task'
        ? Array(NAMES.length).fill(pickMin((m) => plainTaskScore(g, cands[m])))
        : NAMES.map((n) => pickMin((m) => plainCos(g[n], cands[m][n])));
    const a = (2 / 2) * 0.1 * 0.3;
    const d = NAMES.map((n, p) => Array.from(start[n], (v, i) => cands[choice[p]][n][i] - v));
    let threshold = 0;
    if (localMerge === 'ties') {
      const mags = d
        .flat()
        .map(Math.abs)
        .sort((x, y) => x - y);
      threshold = mags[mags.length - Math.floor(mags.length * 0.2) - 1];
    }
    const next: Values = {};
    NAMES.forEach((n, p) => {
      next[n] = Float32Array.from(start[n], (v, i) => (Math.abs(d[p][i]) >= threshold ? v + a * d[p][i] : v));
    });
    return { start, next, picked: choice.map((m) => names[m]) };
  }

  for (const [oracle, localMerge] of [
    ['task', 'ta'],
    ['layer', 'ties'],
  ] as const) {
    it(`one FW-Hard iteration (${oracle}-wise oracle, ${localMerge} local merge, TA start) equals a plain float64 computation`, async (t) => {
      const samples = 6;
      const ref = await referenceIteration(oracle, localMerge, samples);
      const res = await runFrankWolfeLocal({
        pretrained,
        pool,
        targets,
        workDir: fileUri(path.join(dir, `work-${oracle}-${localMerge}`)),
        params: { iterations: 1, oracle, local_merge: localMerge, proxy_samples: samples },
        rowsPerForward: 4,
      });
      const picks = ref.picked;
      t.diagnostic(`reference picks: ${oracle === 'task' ? picks[0] : [...new Set(picks)].join(', ')}`);
      let worst = 0;
      let moved = 0;
      for (const n of NAMES) {
        res.theta[n].forEach((v, i) => {
          worst = Math.max(worst, Math.abs(v - ref.next[n][i]));
          moved = Math.max(moved, Math.abs(ref.next[n][i] - ref.start[n][i]));
        });
      }
      assert.ok(moved > 1e-3, `the reference step moved θ by only ${moved}: the check would be vacuous`);
      assert.ok(worst < 2e-6, `max |θ1 − reference| = ${worst}`);
      const expectPicks =
        oracle === 'task'
          ? [picks[0]]
          : (() => {
              const c = new Map<string, number>();
              for (const p of picks) c.set(p, (c.get(p) ?? 0) + 1);
              return [...c].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, k]) => `${n}×${k}`);
            })();
      assert.deepEqual(
        oracle === 'task' ? [res.iterations[0].picks[0].split('×')[0]] : res.iterations[0].picks,
        expectPicks,
      );
    });
  }

  it('FW-Hard: tensors stay flat across iterations and nothing leaks; FW-Soft likewise, picks never repeat', async () => {
    const before = tf.memory().numTensors;
    for (const params of [
      { variant: 'hard' as const, iterations: 3, oracle: 'layer' as const, proxy_samples: 4 },
      { variant: 'soft' as const, iterations: 2, proxy_samples: 4, adamerging_steps: 2, adamerging_batch_size: 3 },
    ]) {
      const counts: number[] = [];
      const res = await runFrankWolfeLocal({
        pretrained,
        pool,
        targets,
        workDir: fileUri(path.join(dir, `work-mem-${params.variant}`)),
        params,
        onIteration: (info) => {
          counts.push(tf.memory().numTensors);
          if (params.variant === 'soft') {
            const names = info.picks.map((x) => x.split(':')[1]);
            assert.equal(new Set(names).size, names.length, `soft picks repeat: ${info.picks.join(', ')}`);
            assert.equal(info.softLosses!.length, 2);
          }
        },
      });
      assert.equal(res.iterations.length, params.iterations);
      assert.ok(new Set(counts).size === 1, `${params.variant}: tensor count changed across iterations: ${counts}`);
      assert.ok(NAMES.every((n) => res.theta[n].every(Number.isFinite)));
    }
    assert.equal(tf.memory().numTensors, before, 'the local loop leaked tensors');
  });
});

describe('FW-Soft selection', () => {
  /** Scores where every target prefers candidates in the same order (a < b < c) on every tensor. */
  function sameOrderScores(): OracleScores {
    const tensors = ['w', 'b'];
    const s = emptyScores(['c', 'a', 'b'], tensors);
    const g = Float32Array.of(1, 0);
    const thetas: Record<string, Float32Array> = {
      a: Float32Array.of(-1, 0.1),
      b: Float32Array.of(-1, 1),
      c: Float32Array.of(1, 1),
    };
    s.candidates.forEach((c, m) =>
      tensors.forEach((_, p) => {
        accumulateCandidate(s, m, p, g, thetas[c]);
      }),
    );
    tensors.forEach((_, p) => accumulateGrad(s, p, g));
    return s;
  }

  for (const oracle of ['task', 'layer'] as const) {
    it(`${oracle}-wise: one pick per target, never a repeat within an iteration, at most the pool size`, async () => {
      const asked: number[] = [];
      const picks = await softSelect(['t0', 't1', 't2', 't3'], 3, oracle, async (j) => {
        asked.push(j);
        return sameOrderScores();
      });
      assert.deepEqual(asked, [0, 1, 2], 'stops once as many picks as candidates were made');
      if (oracle === 'task') {
        assert.deepEqual(
          picks.map((p) => p.kind === 'task' && p.selection.candidate),
          ['a', 'b', 'c'],
        );
      } else {
        for (let p = 0; p < 2; p++) {
          const names = picks.map((x) => x.kind === 'layer' && x.selection.candidate[p]);
          assert.equal(new Set(names).size, 3, `tensor ${p}: ${names.join(', ')}`);
        }
      }
    });
  }
});

describe('FW-Soft step sizes', () => {
  it('Adam on λ lowers the entropy on fixed batches; the update is θt + Σs λ_s^l (θ_s − θt)', async () => {
    const thetaValues = initParams(CONFIG, 31);
    const selected = [randomValues(31, 's0', 0.5), randomValues(31, 's1', 0.5)].map((tv) =>
      Object.fromEntries(NAMES.map((n) => [n, Float32Array.from(thetaValues[n], (v, i) => v + tv[n][i])])),
    );
    const vectors = softTaskVectors(thetaValues, selected, NAMES);
    const layout = softLayout(['s0', 's1'], NAMES);
    const heads = [memHead(31, 0), memHead(31, 1)];
    const theta = tensorsOf(thetaValues);
    const before = tf.memory().numTensors;
    try {
      const fixed: ObjectiveTarget[] = [0, 1].map((j) => ({
        name: `t${j}`,
        head: heads[j],
        batches: [labeledBatch(31, j, 0, 4)].map(({ inputs, shape }) => ({ inputs, shape })),
      }));
      const { lambda, losses } = await learnSoftStepSizes({
        config: CONFIG,
        layout,
        theta,
        vectors,
        steps: 6,
        init: softInit(0),
        lr: 0.05,
        batchesAt: async () => fixed,
      });
      assert.equal(tf.memory().numTensors, before, 'learnSoftStepSizes leaked tensors');
      assert.equal(softInit(0), 0.3);
      assert.equal(softInit(3), 1e-2);
      for (let s = 1; s < losses.length; s++) assert.ok(losses[s] < losses[s - 1], `step ${s}: ${losses}`);
      const moved = Math.max(...Array.from(lambda, (v) => Math.abs(v - Math.fround(0.3))));
      assert.ok(moved > 0.05, `λ moved at most ${moved}`);
      const next = softUpdate(thetaValues, vectors, layout, lambda);
      NAMES.forEach((n, l) => {
        next[n].forEach((v, i) => {
          let want = thetaValues[n][i];
          selected.forEach((s, k) => (want += lambda[k * NAMES.length + l] * (s[n][i] - thetaValues[n][i])));
          assert.ok(Math.abs(v - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${n}[${i}]: ${v} vs ${want}`);
        });
      });
    } finally {
      tf.dispose(Object.values(theta));
      heads.forEach(disposeHead);
    }
  });
});
