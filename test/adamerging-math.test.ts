/** AdaMerging as pure core code: λ layout, batch rows, AdaMerging++ vectors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalish, rngFor } from '../core/data/rng';
import { tiesMergeTensor } from '../core/merge/ties';
import {
  initLambda,
  lambdaIndex,
  lambdaSize,
  LambdaLayout,
  makeLayout,
  summarizeLambda,
} from '../core/merge/adamerging/coefficients';
import { BatchPlan, BatchRowCursor, epochOrder, stepBatches } from '../core/merge/adamerging/batches';
import { taskVectorThreshold, tiesTaskVectors } from '../core/merge/adamerging/ties_vectors';

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
