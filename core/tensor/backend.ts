/**
 * Pick the TensorFlow.js backend once, at process start.
 *
 * Order: MERGEFLOW_TF_BACKEND (or the `preferred` argument) first, then the native TensorFlow binding
 * (core/tensor/native: what `npm run setup` installs; optional, never required), then the faster of
 * wasm / cpu for the CLIP ViT forward+backward (wasm; see DEFAULT_FALLBACK), then the other.
 * A backend that is missing is skipped silently; one that is broken or fails to start is skipped with a
 * one-line note; cpu always works.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's CommonJS build registers no gradients; this registers the ones tf.grads needs here.
import './gradients';
import { loadNative, nativeDevice, nativeInstalled } from './native';

export type BackendChoice = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['tensorflow', 'wasm', 'cpu'];
export const BACKEND_ENV = 'MERGEFLOW_TF_BACKEND';

/**
 * After the native bindings, the faster of wasm and cpu first. Measured on the 2-core x86 development
 * machine, one CLIP ViT forward+backward step (gradients for every weight):
 *   width 256, 4 layers, 64x64 images, 8x8 patches, batch 4:  wasm 0.8 s, cpu 18.5 s
 *   ViT-B/32 (width 768, 12 layers, 224x224, 32x32), batch 2: wasm 9.8 s, cpu 276 s
 * wasm wins once products go through core/tensor/matmul (XNNPACK handles only untransposed rank-2 ones).
 */
export const DEFAULT_FALLBACK: readonly BackendChoice[] = ['wasm', 'cpu'];

/** Notes go to stderr so that JSON on stdout stays clean. */
export type Note = (msg: string) => void;
const stderrNote: Note = (msg) => process.stderr.write(`mergeflow: ${msg}\n`);

async function tryNative(note: Note): Promise<boolean> {
  if (!tf.findBackendFactory('tensorflow')) {
    let source: string | undefined;
    try {
      source = loadNative();
    } catch (e) {
      note(`${(e as Error).message}; skipping it`);
      return false;
    }
    if (!source) return false; // not installed: nothing to say
  }
  if (await setBackendQuietly('tensorflow')) return true;
  note(`the native 'tensorflow' backend failed to start; skipping it`);
  return false;
}

let wasmPathsSet = false;

async function tryWasm(note: Note): Promise<boolean> {
  if (!tf.findBackendFactory('wasm')) {
    let wasm: { setWasmPaths(prefix: string): void };
    try {
      wasm = require('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      note(`@tensorflow/tfjs-backend-wasm is not usable (${(e as Error).message.split('\n')[0]}); skipping it`);
      return false;
    }
    if (!wasmPathsSet) {
      // In Node the .wasm binaries are read from the package's dist folder, next to its main file.
      wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
      wasmPathsSet = true;
    }
  }
  if (await setBackendQuietly('wasm')) return true;
  note(`the wasm backend failed to start; skipping it`);
  return false;
}

async function setBackendQuietly(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function tryCpu(): Promise<boolean> {
  if (!(await setBackendQuietly('cpu'))) return false;
  // The cpu backend prints a multi-line "install tfjs-node" banner on its first tensor; we chose it knowingly.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return true;
}

function tryOne(choice: BackendChoice, note: Note): Promise<boolean> {
  switch (choice) {
    case 'tensorflow':
      return tryNative(note);
    case 'wasm':
      return tryWasm(note);
    case 'cpu':
      return tryCpu();
  }
}

/** The backends the model tests cover here: cpu, wasm, and tensorflow where it is installed. */
export function installedBackends(): BackendChoice[] {
  return nativeInstalled() ? ['tensorflow', 'wasm', 'cpu'] : ['wasm', 'cpu'];
}

/** The active backend and the device it really runs on, e.g. 'tensorflow (gpu)', 'wasm (cpu)'. */
export function backendDevice(): string {
  return `${tf.getBackend()} (${nativeDevice() ?? 'cpu'})`;
}

export function parseBackendChoice(value: string, source: string): BackendChoice {
  const v = value.trim().toLowerCase();
  if ((BACKEND_CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new Error(`${source}='${value}' is not a tensor backend; choose one of ${BACKEND_CHOICES.join(', ')}`);
}

/**
 * Activate a backend and return the name of the one actually active ('tensorflow', 'wasm' or 'cpu').
 * MERGEFLOW_TF_BACKEND, when set, overrides `preferred`. A preferred backend that cannot start is noted
 * and the default order is tried after it.
 */
export async function initBackend(preferred?: BackendChoice, note: Note = stderrNote): Promise<string> {
  const fromEnv = process.env[BACKEND_ENV];
  const wanted = fromEnv ? parseBackendChoice(fromEnv, BACKEND_ENV) : preferred;
  const defaults: BackendChoice[] = ['tensorflow', ...DEFAULT_FALLBACK];
  const order = wanted ? [wanted, ...defaults.filter((c) => c !== wanted)] : defaults;
  for (const choice of order) {
    // A package that is simply not installed is skipped silently; one that is broken is noted.
    if (await tryOne(choice, note)) {
      await tf.ready();
      return tf.getBackend();
    }
    if (choice === wanted) note(`tensor backend '${choice}' is not available; falling back`);
  }
  throw new Error('no TensorFlow.js backend could start (not even cpu)');
}
