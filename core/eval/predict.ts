/**
 * `mergeflow predict`: embeddings (and, with a head, logits) of a model for every row of a dataset, written
 * as safetensors: `embeddings` F32 [N, dim], `logits` F32 [N, classes]. Inputs are read as core/data reads
 * them: U8 with or without a preprocessing JSON, F32 with one, or F32 without one fed to the model as stored.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkImageSize, openDataset } from '../data/dataset';
import { clipVisionForward, disposeParams, loadClipVision } from '../models/clip_vit';
import { ModelError } from '../models/errors';
import { disposeHead, headClasses, headDim, headLogits, loadHead } from '../models/head';
import { fromFloat32, writeTensors } from '../safetensors';
import { Committed, normalizeUri } from '../store';
import { ensureBackend } from './evaluate';

export interface PredictOptions {
  head?: string;
  batchSize?: number;
  onBatch?: (done: number, total: number) => void | Promise<void>;
}

export interface PredictResult {
  output: Committed;
  n: number;
  dim: number;
  classes?: number;
}

export async function predict(
  modelUri: string,
  inputsUri: string,
  outUri: string,
  opts: PredictOptions = {},
): Promise<PredictResult> {
  const out = normalizeUri(outUri);
  if (!out.endsWith('.safetensors')) throw new ModelError(`--out ${outUri}: the output must be a .safetensors file`);
  await ensureBackend();
  const model = await loadClipVision(modelUri);
  const head = opts.head ? await loadHead(opts.head) : undefined;
  try {
    const c = model.config;
    if (head && headDim(head) !== c.projectionDim) {
      throw new ModelError(
        `${head.source}: head is for ${headDim(head)}-dim embeddings but ${model.uri} projects to ${c.projectionDim}`,
      );
    }
    const ds = await openDataset(normalizeUri(inputsUri), { cacheBytes: 256 * 1024 * 1024 });
    checkImageSize(ds, [c.numChannels, c.imageSize, c.imageSize]);
    const n = ds.n;
    const dim = c.projectionDim;
    const classes = head ? headClasses(head) : 0;
    const emb = new Float32Array(n * dim);
    const logits = head ? new Float32Array(n * classes) : undefined;
    let done = 0;
    for await (const b of ds.batches({ batchSize: opts.batchSize ?? 256 })) {
      const x = tf.tensor4d(b.inputs, b.shape);
      const e = clipVisionForward(model.params, c, x);
      emb.set(e.dataSync(), done * dim);
      if (head && logits) {
        const l = headLogits(head, e);
        logits.set(l.dataSync(), done * classes);
        l.dispose();
      }
      x.dispose();
      e.dispose();
      done += b.shape[0];
      await opts.onBatch?.(done, n);
    }
    const tensors = [{ name: 'embeddings', dtype: 'F32' as const, shape: [n, dim], data: fromFloat32(emb, 'F32') }];
    if (logits)
      tensors.push({ name: 'logits', dtype: 'F32' as const, shape: [n, classes], data: fromFloat32(logits, 'F32') });
    const output = await writeTensors(out, tensors, {
      format: 'pt',
      model: model.uri,
      inputs: ds.uri,
      ...(head ? { head: head.source } : {}),
    });
    return { output, n, dim, classes: head ? classes : undefined };
  } finally {
    disposeParams(model.params);
    if (head) disposeHead(head);
  }
}
