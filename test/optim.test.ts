/** core/optim: Adam against a plain scalar reference, and its state through a safetensors round trip. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { adamInit, adamStep, AdamState } from '../core/optim/adam';
import { loadAdamState, saveAdamState } from '../core/optim/state';
import { SafetensorsFile, writeTensors, fromFloat64 } from '../core/safetensors';
import { fileUri, tmpDir } from './helpers/env';

/** Gradient of Σ a_i (x_i − b_i)² + 0.01·sin(7·x_i) at x: a smooth, non-trivial loss. */
function gradient(x: Float64Array, step: number): Float64Array {
  return x.map((v, i) => 2 * (1 + (i % 5)) * (v - (i % 3) / 3 + 0.2) + 0.07 * Math.cos(7 * v + step));
}

/** PyTorch's documented Adam algorithm, one scalar at a time, in float64 (lr 1e-3, betas 0.9/0.999, eps 1e-8). */
function referenceAdam(x0: number[], steps: number) {
  const [lr, b1, b2, eps] = [1e-3, 0.9, 0.999, 1e-8];
  const x = [...x0];
  const m = x0.map(() => 0);
  const v = x0.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = gradient(Float64Array.from(x), t - 1);
    for (let i = 0; i < x.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - Math.pow(b1, t));
      const vHat = v[i] / (1 - Math.pow(b2, t));
      x[i] = x[i] - (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
  return { x, m, v };
}

function run(state: AdamState, steps: number): AdamState {
  for (let t = 0; t < steps; t++) state = adamStep(state, gradient(state.params, state.step));
  return state;
}

function near(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++)
    assert.ok(
      Math.abs(got[i] - want[i]) <= 1e-12 * Math.max(1, Math.abs(want[i])),
      `${what}[${i}]: ${got[i]} vs ${want[i]}`,
    );
}

test('Adam equals a plain float64 reference of the PyTorch formula over 300 steps', () => {
  const x0 = Array.from({ length: 24 }, (_, i) => 0.3 + 0.05 * Math.sin(i));
  const start = adamInit(Float64Array.from(x0), [3, 8]);
  const first = adamStep(start, gradient(start.params, 0));
  // Adam's first step moves every parameter by lr against the sign of its gradient
  const g0 = gradient(start.params, 0);
  for (let i = 0; i < x0.length; i++) assert.ok(Math.abs(first.params[i] - (x0[i] - 1e-3 * Math.sign(g0[i]))) < 1e-9);
  assert.deepEqual(Array.from(start.params), x0, 'a step leaves its input state untouched');
  assert.equal(start.step, 0);

  const end = run(start, 300);
  const ref = referenceAdam(x0, 300);
  assert.equal(end.step, 300);
  assert.deepEqual(end.shape, [3, 8]);
  near(end.params, ref.x, 'params');
  near(end.m, ref.m, 'm');
  near(end.v, ref.v, 'v');
  assert.ok(
    end.params.some((p, i) => Math.abs(p - x0[i]) > 0.1),
    'the parameters moved well away from the start',
  );
});

test('the optimiser state survives a safetensors round trip bit for bit, and resuming equals not stopping', async () => {
  const dir = tmpDir('optim');
  const uri = fileUri(path.join(dir, 'state', 'adam-000120.safetensors'));
  const mid = {
    ...run(
      adamInit(
        Float64Array.from({ length: 10 }, (_, i) => i / 10),
        [2, 5],
      ),
      120,
    ),
    rngCursor: 1234,
  };
  const saved = await saveAdamState(uri, mid, { run: 'r1', granularity: 'layer' });
  assert.match(saved.sha256, /^[0-9a-f]{64}$/);
  const file = await SafetensorsFile.open(uri);
  assert.deepEqual(
    file.tensors.map((t) => [t.name, t.dtype, t.shape]),
    [
      ['params', 'F64', [2, 5]],
      ['m', 'F64', [2, 5]],
      ['v', 'F64', [2, 5]],
    ],
  );
  const { state, metadata } = await loadAdamState(uri);
  assert.deepEqual(metadata, { run: 'r1', granularity: 'layer' });
  assert.equal(state.step, 120);
  assert.equal(state.rngCursor, 1234);
  assert.deepEqual(state.shape, [2, 5]);
  for (const k of ['params', 'm', 'v'] as const)
    assert.ok(Buffer.from(state[k].buffer).equals(Buffer.from(mid[k].buffer)), `${k} bit for bit`);
  const resumed = run(state, 80);
  const straight = run(mid, 80);
  assert.ok(Buffer.from(resumed.params.buffer).equals(Buffer.from(straight.params.buffer)), 'resume = no stop');

  const other = fileUri(path.join(dir, 'not-state.safetensors'));
  await writeTensors(other, [{ name: 'params', dtype: 'F64', shape: [1], data: fromFloat64(new Float64Array(1)) }]);
  await assert.rejects(loadAdamState(other), /not-state\.safetensors: not an optimiser state/);
});
