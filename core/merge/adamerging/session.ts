/**
 * What an AdaMerging worker holds in memory for a run: θ0 and the K task vectors as tf tensors, the heads and
 * the opened datasets. Loading it is the slow part of an epoch, so a worker keeps sessions in a small cache keyed
 * by content (each input's URI with its ETag), and later epochs of the run are routed to that worker.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Dataset, openDataset } from '../../data/dataset';
import { clipVisionParamShapes, disposeParams, loadClipVision } from '../../models/clip_vit';
import { loadTaskVectors } from './task_vectors_load';
import { ClassificationHead, disposeHead, loadHead } from '../../models/head';
import { SafetensorsFile, fromFloat32, writeTensors } from '../../safetensors';
import { storeFor } from '../../store';
import { BatchRowCursor } from './batches';
import { LambdaLayout, makeLayout } from './coefficients';
import { AdaMergingModel } from './gradient';
import { disposeTaskVectorStack, stackTaskVectors } from './merged';
import type { AdaPlan } from './run_types';
import { taskVectorKey } from './run_types';
import { tiesTaskVectors } from './ties_vectors';

export interface AdaSession {
  key: string;
  layout: LambdaLayout;
  model: AdaMergingModel;
  heads: ClassificationHead[];
  data: Dataset[];
  cursors: BatchRowCursor[];
}

/** Every input URI the session is built from (θ0, task models or processed task vectors, heads, data). */
function inputUris(plan: AdaPlan): string[] {
  return [
    plan.baseFile,
    ...plan.tasks.map((t) => t.model),
    ...(plan.taskVectors ?? []),
    ...plan.tasks.flatMap((t) => [t.head, t.data]),
  ];
}

/** The content key: each input's URI and ETag (a folder stands for its weights' ETag), plus what shapes λ. */
export async function sessionKey(plan: AdaPlan): Promise<string> {
  const parts: string[] = [];
  for (const uri of inputUris(plan)) {
    const file = /\.safetensors$/.test(uri) ? uri : `${uri}/model.safetensors`;
    const st = await storeFor(file).stat(file);
    parts.push(`${uri}@${st?.etag ?? st?.size ?? 'missing'}`);
  }
  const p = plan.params;
  parts.push(`${p.granularity}/${p.variant}/${p.keep}/${p.clamp}/${p.seed}/${p.batch_size}/${p.batches_per_task}`);
  return parts.join('|');
}

/** AdaMerging++ preparation: write each task's TIES-processed task vector (F32, exact); returns their URIs. */
export async function prepareTiesVectors(plan: AdaPlan): Promise<string[]> {
  const pre = await loadClipVision(plan.pretrained);
  try {
    const shapes = clipVisionParamShapes(pre.config);
    const names = shapes.map((s) => s.name);
    const base = names.map((n) => pre.params[n].dataSync() as Float32Array);
    const { vectors } = tiesTaskVectors(
      await loadTaskVectors(
        plan.tasks.map((t) => t.model),
        names,
        base,
        pre.config,
      ),
      plan.params.keep,
    );
    const uris: string[] = [];
    for (let k = 0; k < plan.tasks.length; k++) {
      const uri = taskVectorKey(plan, plan.tasks[k].name);
      await writeTensors(
        uri,
        shapes.map((s, l) => ({
          name: s.name,
          dtype: 'F32' as const,
          shape: s.shape,
          data: fromFloat32(vectors[k][l], 'F32'),
        })),
        { format: 'mergeflow-task-vector', keep: String(plan.params.keep) },
      );
      uris.push(uri);
    }
    return uris;
  } finally {
    disposeParams(pre.params);
  }
}

async function readVectors(uris: readonly string[], names: readonly string[]): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (const uri of uris) {
    const f = await SafetensorsFile.open(uri);
    out.push(await Promise.all(names.map((n) => f.readFloat32(n))));
  }
  return out;
}

export async function openSession(plan: AdaPlan, key: string): Promise<AdaSession> {
  const pre = await loadClipVision(plan.pretrained);
  const heads: ClassificationHead[] = [];
  let model: AdaMergingModel | undefined;
  try {
    const config = pre.config;
    const shapes = clipVisionParamShapes(config);
    const names = shapes.map((s) => s.name);
    const layout = makeLayout(
      plan.params.granularity,
      plan.tasks.map((t) => t.name),
      names,
    );
    const base = names.map((n) => pre.params[n].dataSync() as Float32Array);
    const vectors =
      plan.params.variant === 'ties'
        ? await readVectors(plan.taskVectors ?? [], names)
        : await loadTaskVectors(
            plan.tasks.map((t) => t.model),
            names,
            base,
            config,
          );
    if (vectors.length !== plan.tasks.length)
      throw new Error(
        `AdaMerging: ${vectors.length} task vectors for ${plan.tasks.length} tasks (was the preparation run?)`,
      );
    const byName = vectors.map((tv) => Object.fromEntries(names.map((n, l) => [n, tv[l]])));
    const shapeOf = Object.fromEntries(shapes.map((s) => [s.name, s.shape]));
    model = {
      config,
      layout,
      base: pre.params,
      taskVectors: stackTaskVectors(layout, shapeOf, byName),
      clamp: plan.params.clamp,
    };
    for (const t of plan.tasks) heads.push(await loadHead(t.head));
    const data = await Promise.all(plan.tasks.map((t) => openDataset(t.data, { cacheBytes: 64 * 1024 * 1024 })));
    const { seed, batch_size: batchSize, batches_per_task: batchesPerTask } = plan.params;
    const cursors = plan.tasks.map(
      (t, k) => new BatchRowCursor({ seed, rows: data[k].n, batchSize, batchesPerTask }, t.name),
    );
    return { key, layout, model, heads, data, cursors };
  } catch (e) {
    heads.forEach(disposeHead);
    if (model) disposeTaskVectorStack(model.taskVectors);
    disposeParams(pre.params);
    throw e;
  }
}

export function disposeSession(s: AdaSession): void {
  s.heads.forEach(disposeHead);
  disposeTaskVectorStack(s.model.taskVectors);
  tf.dispose(Object.values(s.model.base));
}
