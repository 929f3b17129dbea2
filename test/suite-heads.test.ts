/** The suite's heads: class-mean prototypes, and prototypes mixed with a seeded random direction per class. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rngFor } from '../core/data/rng';
import { headKeyFor } from '../core/suite/recipe';
import { mixedHead, prototypeHead } from '../core/suite/train';
import { taskByName } from '../core/data/tasks';

const dim = 16;
const classes = 3;

/** Embeddings clustered around one direction per class. */
function embeddings(n: number): { emb: Float32Array; labels: number[] } {
  const rng = rngFor(1, 'emb');
  const emb = new Float32Array(n * dim);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i % classes;
    labels.push(y);
    for (let k = 0; k < dim; k++) emb[i * dim + k] = (k === y ? 3 : 0) + rng() - 0.5;
  }
  return { emb, labels };
}

const row = (w: Float32Array, y: number) => w.subarray(y * dim, (y + 1) * dim);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, k) => s + v * b[k], 0);

test('mixed heads: unit rows, seeded, closer to the prototypes the larger the mix', () => {
  const { emb, labels } = embeddings(60);
  const proto = prototypeHead(emb, labels, classes, dim, Math.log(10));
  const cosines = [1, 0.5, 0.3, 0].map((mix) => {
    const h = mixedHead(proto, mix, rngFor(0, 'head-mix', 'task'));
    assert.equal(h.logitScale, proto.logitScale);
    for (let y = 0; y < classes; y++) assert.ok(Math.abs(dot(row(h.weight, y), row(h.weight, y)) - 1) < 1e-5);
    return dot(row(h.weight, 0), row(proto.weight, 0));
  });
  assert.ok(Math.abs(cosines[0] - 1) < 1e-5, 'mix 1 keeps the prototypes');
  assert.ok(cosines[0] > cosines[1] && cosines[1] > cosines[2], `cosines ${cosines}`);
  const a = mixedHead(proto, 0.3, rngFor(0, 'head-mix', 'task'));
  const b = mixedHead(proto, 0.3, rngFor(0, 'head-mix', 'task'));
  const c = mixedHead(proto, 0.3, rngFor(0, 'head-mix', 'other task'));
  assert.deepEqual(a.weight, b.weight);
  assert.notDeepEqual(a.weight, c.weight);
});

test('mixed heads keyed by task (suite default) or by label space (the measured lab variant)', () => {
  const [digits, rot90, fashion] = ['digits', 'digits-rot90', 'fashion'].map((n) => taskByName(n));
  // default: every task draws its own directions
  assert.equal(headKeyFor({}, digits), 'digits');
  assert.notEqual(headKeyFor({ headMixKey: 'task' }, digits), headKeyFor({ headMixKey: 'task' }, rot90));
  // 'labels': tasks that name the same classes share them, others do not
  const key = (t: typeof digits) => headKeyFor({ headMixKey: 'labels' }, t);
  assert.equal(key(digits), key(rot90));
  assert.notEqual(key(digits), key(fashion));
  const { emb, labels } = embeddings(60);
  const proto = prototypeHead(emb, labels, classes, dim, Math.log(10));
  const a = mixedHead(proto, 0.3, rngFor(0, 'head-mix', key(digits)));
  const b = mixedHead(proto, 0.3, rngFor(0, 'head-mix', key(rot90)));
  assert.deepEqual(a.weight, b.weight);
});
