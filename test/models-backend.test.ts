/** Backend choice: the default order, MERGEFLOW_TF_BACKEND, and falling back when a package is missing. */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_ENV, DEFAULT_FALLBACK, initBackend } from '../core/tensor/backend';

function installed(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}
const hasNative = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

describe('initBackend', () => {
  const saved = process.env[BACKEND_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[BACKEND_ENV];
    else process.env[BACKEND_ENV] = saved;
  });

  it('cpu starts without printing the tfjs-node banner', async () => {
    const warn = console.warn;
    const seen: unknown[] = [];
    console.warn = (...args: unknown[]) => void seen.push(args);
    try {
      assert.equal(await initBackend('cpu', () => undefined), 'cpu');
      tf.tensor([1, 2, 3]).dispose();
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(seen, []);
  });

  it('default: the native binding when installed, else the measured-faster wasm', async () => {
    delete process.env[BACKEND_ENV];
    assert.deepEqual(DEFAULT_FALLBACK, ['wasm', 'cpu']);
    assert.equal(await initBackend(undefined, () => undefined), hasNative ? 'tensorflow' : 'wasm');
    assert.equal(tf.getBackend(), hasNative ? 'tensorflow' : 'wasm');
    assert.deepEqual(Array.from(tf.add(tf.tensor([1, 2]), 1).dataSync()), [2, 3]);
  });

  it('MERGEFLOW_TF_BACKEND overrides the preferred argument', async () => {
    process.env[BACKEND_ENV] = 'cpu';
    assert.equal(await initBackend('wasm', () => undefined), 'cpu');
    process.env[BACKEND_ENV] = ' WASM ';
    assert.equal(await initBackend('cpu', () => undefined), 'wasm');
  });

  it('an unknown MERGEFLOW_TF_BACKEND is a clear error', async () => {
    process.env[BACKEND_ENV] = 'gpu';
    await assert.rejects(
      initBackend(),
      /MERGEFLOW_TF_BACKEND='gpu' is not a tensor backend; choose one of tensorflow, wasm, cpu/,
    );
  });

  it('asking for tensorflow without tfjs-node falls back with a note, never a crash', { skip: hasNative }, async () => {
    delete process.env[BACKEND_ENV];
    const notes: string[] = [];
    assert.equal(await initBackend('tensorflow', (m) => notes.push(m)), 'wasm');
    assert.deepEqual(notes, ["tensor backend 'tensorflow' is not available; falling back"]);
  });
});
