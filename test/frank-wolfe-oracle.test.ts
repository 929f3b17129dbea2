/**
 * The sharded, streamed oracle on constructed cases, with candidates and gradients in the real S3 store: each
 * shard reads every candidate tensor once, and the combined pick is the one built in, task-wise and layer-wise,
 * FW-Hard (g = Σj g_j) and FW-Soft (one pick per target, never the same candidate twice), ties to the name that
 * sorts first.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fromFloat32, writeTensors } from '../core/safetensors';
import { frankWolfeParams } from '../core/merge/frank_wolfe/params';
import type { FwCandidate, FwOracleResult, FwPlan } from '../core/merge/frank_wolfe/run_types';
import { combineShards, pickCandidates } from '../core/merge/frank_wolfe/select';
import { taskScores } from '../core/merge/frank_wolfe/oracle_scores';
import { oracleShardStep } from '../core/merge/frank_wolfe/steps';
import { s3Prefix } from './helpers/env';

const prefix = s3Prefix('fw-oracle');
const TENSORS = ['a', 'b'];

async function write(name: string, a: number[], b: number[]): Promise<string> {
  const uri = `${prefix}/${name}.safetensors`;
  await writeTensors(uri, [
    { name: 'a', dtype: 'F32', shape: [a.length], data: fromFloat32(Float32Array.from(a), 'F32') },
    { name: 'b', dtype: 'F32', shape: [b.length], data: fromFloat32(Float32Array.from(b), 'F32') },
  ]);
  return uri;
}

/**
 * g = (a: e0, b: e1), split over two targets as g/2 + g/2. Cosines per (candidate, tensor):
 *   m1: a −1, b +1 (Σ 0)        m2: a 0, b −1 (Σ −1)
 *   m3: a −1/√2, b −1/√2 (Σ −√2, the task-wise minimum)     m0 = 2·m3 (the same cosines: a tie, m0 sorts first)
 * Layer-wise: a → m1 (−1), b → m2 (−1).
 */
let pool: FwCandidate[];
let grads: string[];
before(async () => {
  pool = [
    { name: 'm1', uri: await write('m1', [-1, 0, 0, 0], [0, 1, 0]) },
    { name: 'm2', uri: await write('m2', [0, 1, 0, 0], [0, -1, 0]) },
    { name: 'm3', uri: await write('m3', [-1, 1, 0, 0], [0, -1, 1]) },
    { name: 'm0', uri: await write('m0', [-2, 2, 0, 0], [0, -2, 2]) },
  ];
  grads = [await write('g0', [0.5, 0, 0, 0], [0, 0.5, 0]), await write('g1', [0.5, 0, 0, 0], [0, 0.5, 0])];
});

function plan(params: Record<string, unknown>): FwPlan {
  return {
    runId: 'oracle-test',
    params: frankWolfeParams.parse(params),
    start: 'pretrained',
    pretrained: '',
    pool,
    targets: [],
    tensors: TENSORS,
    shards: [['a'], ['b']],
    tensorCount: 2,
    mergedElements: 7,
    output: '',
    dtype: 'base',
    workPrefix: `${prefix}/oracle-work/`,
    warnings: [],
  };
}

async function shards(p: FwPlan, mode: 'sum' | 'each'): Promise<FwOracleResult[]> {
  const out: FwOracleResult[] = [];
  for (let s = 0; s < p.shards.length; s++) {
    const reads: string[] = [];
    const r = await oracleShardStep(
      { plan: p, iteration: 0, shard: s, grads, mode, candidates: pool },
      { tick: (n) => reads.push(n) },
    );
    // every candidate's tensors of this shard, each read once (whatever the number of gradient sets)
    assert.equal(r.reads, pool.length * p.shards[s].length);
    assert.deepEqual(new Set(reads).size, reads.length);
    out.push(r);
  }
  return out;
}

test('FW-Hard task-wise: the most negative Σp cos wins; an exact tie goes to the name that sorts first', async () => {
  const p = plan({ variant: 'hard', oracle: 'task' });
  const scores = combineShards(
    TENSORS,
    (await shards(p, 'sum')).map((r) => r.scores),
  );
  assert.equal(scores.length, 1);
  const { picks, record } = pickCandidates(p.params, ['t0', 't1'], scores);
  assert.deepEqual(record, [{ target: 'all', candidate: 'm0' }]);
  assert.deepEqual(picks[0].choice, [3, 3]);
});

test('FW-Hard layer-wise: a composite, the best candidate per tensor', async () => {
  const p = plan({ variant: 'hard', oracle: 'layer' });
  const scores = combineShards(
    TENSORS,
    (await shards(p, 'sum')).map((r) => r.scores),
  );
  const { record } = pickCandidates(p.params, ['t0', 't1'], scores);
  assert.deepEqual(record, [{ target: 'all', perTensor: ['m1', 'm2'] }]);
});

test('FW-Soft: one pick per target from the pool minus the picks before it', async () => {
  const task = plan({ variant: 'soft', oracle: 'task' });
  const each = combineShards(
    TENSORS,
    (await shards(task, 'each')).map((r) => r.scores),
  );
  assert.equal(each.length, 2, 'one set of scores per target gradient');
  assert.deepEqual(pickCandidates(task.params, ['t0', 't1'], each).record, [
    { target: 't0', candidate: 'm0' },
    { target: 't1', candidate: 'm3' },
  ]);
  const layer = plan({ variant: 'soft', oracle: 'layer' });
  assert.deepEqual(pickCandidates(layer.params, ['t0', 't1'], each).record, [
    { target: 't0', perTensor: ['m1', 'm2'] },
    { target: 't1', perTensor: ['m0', 'm0'] },
  ]);
});

test('oracle_basis task_vectors: each shard scores θm − θ0 against the base it streams', async () => {
  const p = { ...plan({ variant: 'hard', oracle: 'task', oracle_basis: 'task_vectors' }), pretrained: pool[0].uri };
  const scores = combineShards(
    TENSORS,
    (await shards(p, 'sum')).map((r) => r.scores),
  );
  // plain Σp cos(g_p, θm,p − θ0,p) with θ0 = m1 (m1's own task vector is 0: cos 0), g = (e0, e1)
  const cos = (g: number[], v: number[]) => {
    const dot = g.reduce((a, x, i) => a + x * v[i], 0);
    const n = Math.hypot(...g) * Math.hypot(...v);
    return n > 0 ? dot / n : 0;
  };
  const theta: Record<string, number[][]> = {
    m1: [
      [-1, 0, 0, 0],
      [0, 1, 0],
    ],
    m2: [
      [0, 1, 0, 0],
      [0, -1, 0],
    ],
    m3: [
      [-1, 1, 0, 0],
      [0, -1, 1],
    ],
    m0: [
      [-2, 2, 0, 0],
      [0, -2, 2],
    ],
  };
  const g = [
    [1, 0, 0, 0],
    [0, 1, 0],
  ];
  const want = pool.map((c) =>
    [0, 1].reduce(
      (a, t) =>
        a +
        cos(
          g[t],
          theta[c.name][t].map((v, i) => v - theta.m1[t][i]),
        ),
      0,
    ),
  );
  taskScores(scores[0]).forEach((v, m) =>
    assert.ok(Math.abs(v - want[m]) < 1e-6, `${pool[m].name}: ${v} vs ${want[m]}`),
  );
  assert.deepEqual(pickCandidates(p.params, ['t0', 't1'], scores).record, [{ target: 'all', candidate: 'm0' }]);
});
