/** `steps_per_epoch: auto`: the epoch length that keeps the measured orchestration share within 5 %. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUTO_FIRST_EPOCH,
  AUTO_MAX_EPOCH_SECONDS,
  AUTO_MAX_OVERHEAD,
  AUTO_TARGET,
  autoEpochSteps,
  PARALLEL_EPOCH,
  RunTimings,
} from '../core/merge/adamerging/epoch_size';

/** A run of `epochs` epochs of `n` steps: s seconds a step, c checkpoint seconds a step, f fixed seconds an epoch. */
function timings(n: number, epochs: number, s: number, c: number, f: number, load = 0): RunTimings {
  const steps = n * epochs;
  return {
    steps,
    epochs,
    stepSeconds: steps * s,
    checkpointSeconds: steps * c,
    loadSeconds: load,
    epochWall: steps * (s + c) + epochs * f + load,
  };
}

/** The orchestration share of an epoch of N steps under those costs. */
const share = (N: number, s: number, c: number, f: number) => (f + N * c) / (N * (s + c) + f);

test('the first epoch is short; its timings size the rest', () => {
  assert.equal(autoEpochSteps(undefined), AUTO_FIRST_EPOCH);
  assert.equal(autoEpochSteps({ ...timings(0, 0, 0, 0, 0) }), AUTO_FIRST_EPOCH);
  assert.equal(autoEpochSteps(timings(10, 1, 0.3, 0, 0.3), true), PARALLEL_EPOCH, 'parallel: tasks');
});

test('the chosen N keeps the share within 5 % wherever some N can, and is not needlessly long', () => {
  const cases: [number, number, number][] = [];
  for (const s of [0.005, 0.0177, 0.0586, 0.1, 0.31, 1.4, 5])
    for (const c of [0, 0.0001, 0.0005]) for (const f of [0.05, 0.11, 0.45, 2]) cases.push([s, c, f]);
  let checked = 0;
  for (const [s, c, f] of cases) {
    const N = autoEpochSteps(timings(AUTO_FIRST_EPOCH, 1, s, c, f, 3.8));
    assert.ok(Number.isSafeInteger(N) && N >= AUTO_FIRST_EPOCH, `N = ${N}`);
    const cap = Math.floor(AUTO_MAX_EPOCH_SECONDS / s);
    if (N < cap) {
      assert.ok(share(N, s, c, f) <= AUTO_MAX_OVERHEAD, `s ${s} c ${c} f ${f}: N ${N} leaves ${share(N, s, c, f)}`);
      // not needlessly long: half of it (when above the minimum) would already exceed the share it sizes for
      if (N / 2 >= AUTO_FIRST_EPOCH)
        assert.ok(share(Math.floor(N / 2), s, c, f) > AUTO_TARGET, `s ${s} c ${c} f ${f}: N ${N}`);
      checked++;
    }
  }
  assert.ok(checked > cases.length / 2, `only ${checked} of ${cases.length} cases were feasible`);
});

test('checkpoints that alone cost over the target: the epoch runs for the cap (a larger checkpoint_every helps)', () => {
  // 100 ms steps, a 10 ms checkpoint every 5 steps: 2 % whatever N, over the target
  const s = 0.1;
  assert.equal(autoEpochSteps(timings(10, 1, s, 0.002, 0.11)), Math.floor(AUTO_MAX_EPOCH_SECONDS / s));
  // the same with a checkpoint every 50 steps fits
  const N = autoEpochSteps(timings(10, 1, s, 0.0002, 0.11));
  assert.ok(share(N, s, 0.0002, 0.11) <= AUTO_TARGET && N < 1000, `N ${N}`);
});
