/**
 * Evaluation: accuracy of a model (Hugging Face folder: config.json + model.safetensors) on a task's labeled
 * test split with that task's own head, and over a suite's tasks (per task and average), in batches through
 * TensorFlow.js. The backend is picked once per process (ensureBackend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkImageSize, DatasetError, openDataset } from '../data/dataset';
import { ClipVisionModel, clipVisionForward, disposeParams, loadClipVision } from '../models/clip_vit';
import { ClassificationHead, disposeHead, headClasses, headDim, headLogits, loadHead } from '../models/head';
import { ModelError } from '../models/errors';
import { BackendChoice, initBackend } from '../tensor/backend';

let backendReady: Promise<string> | undefined;

/**
 * Start the tensor backend once per process (later calls return the first one's result). The default
 * preference is wasm: for the small CLIP models mergeflow evaluates on 2-core machines it ran the forward
 * pass ~50x faster than the cpu backend (see core/suite/README.md); MERGEFLOW_TF_BACKEND overrides. A process
 * that already started a backend keeps it.
 */
export function ensureBackend(preferred: BackendChoice = 'wasm'): Promise<string> {
  // A process that already chose its backend (a worker at start-up) keeps it.
  const current = (tf.engine() as unknown as { backendName: string | null }).backendName;
  backendReady ??= current ? Promise.resolve(current) : initBackend(preferred);
  return backendReady;
}

export interface TaskEvalSpec {
  /** Task name (the key in results). */
  name: string;
  /** Labeled dataset URI (…/test.safetensors). */
  test: string;
  /** Head URI (…/<task>.safetensors). */
  head: string;
}

export interface TaskAccuracy {
  task: string;
  accuracy: number;
  correct: number;
  n: number;
}

/** The JSON `mergeflow eval --json` prints. */
export interface SuiteAccuracy {
  average: number;
  tasks: Record<string, number>;
}

export interface EvalOptions {
  batchSize?: number;
  /** Called after each batch (done rows, total rows, task name); may throw to stop (cancellation). */
  onBatch?: (done: number, total: number, note: string) => void | Promise<void>;
  /** Evaluate at most this many test rows per task (the first ones). */
  limit?: number;
}

export class EvalError extends Error {
  override name = 'EvalError';
}

/** Argmax per row (first on ties), like head.accuracy. */
function argmaxRows(logits: tf.Tensor2D): Int32Array {
  return tf.tidy(() => tf.argMax(logits, 1)).dataSync() as Int32Array;
}

/** Accuracy of a loaded model with a loaded head on a labeled dataset. */
export async function evaluateLoaded(
  model: ClipVisionModel,
  head: ClassificationHead,
  testUri: string,
  name: string,
  opts: EvalOptions = {},
): Promise<TaskAccuracy> {
  const c = model.config;
  if (headDim(head) !== c.projectionDim) {
    throw new ModelError(
      `${head.source}: head is for ${headDim(head)}-dim embeddings but ${model.uri} projects to ${c.projectionDim}`,
    );
  }
  const ds = await openDataset(testUri, { cacheBytes: 256 * 1024 * 1024 });
  checkImageSize(ds, [c.numChannels, c.imageSize, c.imageSize]);
  const labels = ds.labels;
  if (!labels) throw new DatasetError(`${testUri}: no 'labels' tensor; evaluation needs a labeled test split`);
  const classes = headClasses(head);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) {
      throw new DatasetError(
        `${testUri}: label ${labels[i]} at row ${i} is outside the head's ${classes} classes [0, ${classes}) (${head.source})`,
      );
    }
  }
  const batchSize = opts.batchSize ?? 256;
  const total = Math.min(ds.n, opts.limit ?? ds.n);
  let correct = 0;
  let done = 0;
  for await (const b of ds.batches({ batchSize, limit: total })) {
    const x = tf.tensor4d(b.inputs, b.shape);
    const logits = tf.tidy(() => headLogits(head, clipVisionForward(model.params, c, x)));
    const pred = argmaxRows(logits);
    x.dispose();
    logits.dispose();
    for (let i = 0; i < pred.length; i++) if (pred[i] === b.labels![i]) correct++;
    done += pred.length;
    await opts.onBatch?.(done, total, name);
  }
  return { task: name, accuracy: total ? correct / total : 0, correct, n: total };
}

/** Accuracy of the model at `modelUri` on one task. */
export async function evaluateTask(
  modelUri: string,
  task: TaskEvalSpec,
  opts: EvalOptions = {},
): Promise<TaskAccuracy> {
  return (await evaluateModel(modelUri, [task], opts)).details[0];
}

/** Accuracy of one model on several tasks: per task and the plain average over the tasks. */
export async function evaluateModel(
  modelUri: string,
  tasks: readonly TaskEvalSpec[],
  opts: EvalOptions = {},
): Promise<SuiteAccuracy & { details: TaskAccuracy[] }> {
  if (!tasks.length) throw new EvalError('nothing to evaluate: no tasks given');
  await ensureBackend();
  const model = await loadClipVision(modelUri);
  const details: TaskAccuracy[] = [];
  try {
    for (const t of tasks) {
      const head = await loadHead(t.head);
      try {
        details.push(await evaluateLoaded(model, head, t.test, t.name, opts));
      } finally {
        disposeHead(head);
      }
    }
  } finally {
    disposeParams(model.params);
  }
  return summarize(details);
}

export function summarize(details: TaskAccuracy[]): SuiteAccuracy & { details: TaskAccuracy[] } {
  const tasks: Record<string, number> = {};
  for (const d of details) tasks[d.task] = d.accuracy;
  const average = details.reduce((a, d) => a + d.accuracy, 0) / Math.max(1, details.length);
  return { average, tasks, details };
}
