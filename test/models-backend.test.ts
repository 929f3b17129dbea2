/**
 * Backend choice: the default order, MERGEFLOW_TF_BACKEND, the native backend where `npm run setup` installed
 * it, and falling back with one line when it is missing or broken.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_ENV, DEFAULT_FALLBACK, backendDevice, initBackend, installedBackends } from '../core/tensor/backend';
import { GRADIENT_KERNELS } from '../core/tensor/gradients';
import { NATIVE_ENV, NATIVE_STAMP, loadNative, nativeInstalled } from '../core/tensor/native';

const hasNative = nativeInstalled();

/** A native folder whose finished-looking install has a binding that cannot load its library. */
function brokenNative(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-native-'));
  const pkg = path.join(dir, 'node', 'node_modules', '@tensorflow', 'tfjs-node');
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(
    path.join(pkg, 'index.js'),
    "throw new Error('libtensorflow_cc.so.2: cannot open shared object file: No such file or directory');\n",
  );
  fs.writeFileSync(path.join(dir, NATIVE_STAMP), '{"variant":"cpu","tensorflow":"2.21.0","tfjsNode":"4.22.0"}');
  return dir;
}

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

  it('asking for tensorflow gives it where installed, else wasm after one note', async () => {
    delete process.env[BACKEND_ENV];
    const notes: string[] = [];
    const got = await initBackend('tensorflow', (m) => notes.push(m));
    if (hasNative) {
      assert.equal(got, 'tensorflow');
      assert.deepEqual(notes, []);
      const gpu = (tf.backend() as unknown as { binding: { isUsingGpuDevice(): boolean } }).binding.isUsingGpuDevice();
      assert.equal(backendDevice(), `tensorflow (${gpu ? 'gpu' : 'cpu'})`);
    } else {
      assert.equal(got, 'wasm');
      assert.deepEqual(notes, ["tensor backend 'tensorflow' is not available; falling back"]);
      assert.equal(backendDevice(), 'wasm (cpu)');
    }
    assert.deepEqual(installedBackends(), hasNative ? ['tensorflow', 'wasm', 'cpu'] : ['wasm', 'cpu']);
  });

  it('the native backend keeps our gradients over the ones its union package brings', async () => {
    await initBackend(hasNative ? 'tensorflow' : 'cpu', () => undefined);
    // SquaredDifference with a broadcast input: the union package's gradient returns the unreduced shape.
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor1d([1, 1, 1]);
    const [, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.squaredDifference(x, y)))([a, b]);
    assert.deepEqual(gb.shape, [3]);
    assert.deepEqual(Array.from(gb.dataSync()), [-6, -10, -14]);
    assert.ok(GRADIENT_KERNELS.every((k) => tf.getGradient(k)));
    tf.dispose([a, b, gb]);
  });

  it('CI (MERGEFLOW_EXPECT_NATIVE=1) has the native backend installed', () => {
    if (process.env.MERGEFLOW_EXPECT_NATIVE === '1') assert.ok(hasNative, 'npm run setup did not install it');
    assert.equal(installedBackends().includes('tensorflow'), hasNative);
  });

  it('a broken native install is one clear error from loadNative', () => {
    const dir = brokenNative();
    assert.throws(
      () => loadNative(dir),
      (e: Error) =>
        /^the native TensorFlow backend at .*tfjs-node failed to load \(libtensorflow_cc\.so\.2: cannot open shared object file: No such file or directory\); rerun npm run setup$/.test(
          e.message,
        ),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a broken native install: the chooser notes it in one line and falls back to wasm', () => {
    const dir = brokenNative();
    const script = `require(${JSON.stringify(path.join(__dirname, '..', 'core', 'tensor', 'backend.js'))})
      .initBackend().then((b) => console.log(b))`;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, [NATIVE_ENV]: dir, [BACKEND_ENV]: '' },
      encoding: 'utf8',
    });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'wasm');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      /^mergeflow: the native TensorFlow backend at .* failed to load \(libtensorflow_cc\.so\.2: .*\); rerun npm run setup; skipping it$/,
    );
  });
});
