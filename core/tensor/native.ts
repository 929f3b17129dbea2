/**
 * The native TensorFlow backend: the tfjs-node binding that `npm run setup` (infra/native/install.sh) builds
 * against the TensorFlow wheel from PyPI, kept in .mergeflow/native (MERGEFLOW_NATIVE) so that `npm ci`
 * leaves it alone. A tfjs-node or tfjs-node-gpu package installed into node_modules by hand also counts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerGradients } from './gradients';

export const NATIVE_ENV = 'MERGEFLOW_NATIVE';
/** What infra/native/install.sh writes into the native folder once its probe has passed. */
export const NATIVE_STAMP = 'installed.json';

export interface NativeStamp {
  /** The wheel installed: 'gpu' is tensorflow[and-cuda], 'cpu' is tensorflow-cpu. */
  variant: 'cpu' | 'gpu';
  tensorflow: string;
  tfjsNode: string;
}

/** dist/core/tensor -> the repository root. */
const REPO = path.resolve(__dirname, '..', '..', '..');

export function nativeDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env[NATIVE_ENV] || path.join(REPO, '.mergeflow', 'native'));
}

/** The install's stamp, or undefined when the folder holds no finished install. */
export function readNativeStamp(dir = nativeDir()): NativeStamp | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, NATIVE_STAMP), 'utf8')) as NativeStamp;
  } catch {
    return undefined;
  }
}

const NODE_MODULES_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

function resolvable(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Where the binding would load from: the native folder's tfjs-node, else a package in node_modules. */
export function nativeSource(dir = nativeDir()): string | undefined {
  if (readNativeStamp(dir)) return path.join(dir, 'node', 'node_modules', '@tensorflow', 'tfjs-node');
  return NODE_MODULES_PACKAGES.find(resolvable);
}

/** Whether a native backend is installed (it may still fail to load). */
export function nativeInstalled(dir = nativeDir()): boolean {
  return nativeSource(dir) !== undefined;
}

/**
 * Load the binding so that it registers the 'tensorflow' backend. Returns where it came from, or undefined
 * when none is installed; throws one line naming the install and what to do when it is there but broken.
 */
export function loadNative(dir = nativeDir()): string | undefined {
  const source = nativeSource(dir);
  if (!source) return undefined;
  // Before TensorFlow starts: take GPU memory as needed (not all of it at once), keep INFO logs quiet.
  process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  try {
    require(source);
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    throw new Error(`the native TensorFlow backend at ${source} failed to load (${why}); rerun npm run setup`, {
      cause: e,
    });
  } finally {
    // tfjs-node loads @tensorflow/tfjs, whose gradients replace ours (see core/tensor/gradients).
    registerGradients(true);
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new Error(
      `${source} registered no 'tensorflow' backend with this @tensorflow/tfjs-core (a second copy?); rerun npm run setup`,
    );
  }
  return source;
}

/** 'gpu' or 'cpu' for the active tensorflow backend (the binding's isUsingGpuDevice()); undefined on others. */
export function nativeDevice(): 'gpu' | 'cpu' | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const backend = tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } };
  return backend.binding?.isUsingGpuDevice?.() ? 'gpu' : 'cpu';
}

/** One line when the GPU build of the native backend runs on the CPU because TensorFlow found no usable GPU. */
export function gpuFallbackNote(dir = nativeDir()): string | undefined {
  if (nativeDevice() !== 'cpu' || readNativeStamp(dir)?.variant !== 'gpu') return undefined;
  return (
    `the GPU build of TensorFlow in ${dir} found no usable GPU and runs on the CPU; check nvidia-smi and ` +
    `TensorFlow's log above (driver >= 555, CUDA 12 libraries; see infra/deploy/README.md)`
  );
}
