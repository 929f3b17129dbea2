/**
 * `mergeflow suite build`: the mini-8 merging benchmark, reproducibly from a seed.
 *
 * Layout under the suite folder (any store URI):
 *   suite.json                          the manifest (manifest.ts)
 *   data/<task>/{train,test}.safetensors + .json, data/tasks.json   (core/data writeTaskDatasets)
 *   models/pretrained/{config.json,model.safetensors}   the tiny CLIP-style ViT, pretrained (pretext.ts)
 *   models/<task>/{config.json,model.safetensors}       fine-tuned from it on <task> (24: 8 targets + 16 irrelevant)
 *   heads/<task>.safetensors            the task's frozen CLIP-style head (weight [classes, dim], logit_scale [1])
 *
 * Steps: task data -> pretrain on the pooled data (generic pretext objective) -> per task, in parallel worker
 * threads: fit the head on the frozen pretrained encoder (class-mean prototypes), fine-tune the encoder
 * through the frozen head -> write everything -> suite.json with every file's sha256.
 */
import * as os from 'node:os';
import { buildTaskData, TaskData, TASKS, TaskSize, writeTaskDatasets, IMAGE_SHAPE } from '../data/tasks';
import { rngFor } from '../data/rng';
import { ImageSource, loadSource } from '../data/sources';
import { joinUri, putObject, sha256Of, storeFor } from '../store';
import type { BackendChoice } from '../tensor/backend';
import { VERSION } from '../version';
import { SUITE_FILE, SUITE_FORMAT, SUITE_VERSION, SuiteManifest, suiteFolder, SuiteTask } from './manifest';
import { headKeyFor, headsKind, RECIPES, SuiteRecipe } from './recipe';
import { writeHead, writeModel } from './io';
import { pretextSet, PRETEXT_DESCRIPTIONS } from './pretext';
import { JobPool } from './pool';
import { PretrainOutput, TaskOutput } from './jobs';
import { initParams, randomHead, TrainSet } from './train';

export type BuildEvent =
  | { phase: 'data'; state: 'start' | 'done'; tasks: number; seconds?: number }
  | { phase: 'pretrain'; step: number; total: number; loss: number }
  | { phase: 'pretrain-done'; seconds: number; lossStart: number; lossEnd: number }
  | { phase: 'task'; task: string; step: number; total: number; loss: number }
  | {
      phase: 'task-done';
      task: string;
      done: number;
      total: number;
      seconds: number;
      lossStart: number;
      lossEnd: number;
    }
  | { phase: 'write'; state: 'start' | 'done'; seconds?: number };

export interface SuiteBuildOptions {
  seed?: number;
  size?: TaskSize;
  /** Worker threads training models at once (default: one per core; 0 = in this thread). */
  workers?: number;
  /** Tensor backend for training (default wasm: the fastest measured for this model; MERGEFLOW_TF_BACKEND wins). */
  backend?: BackendChoice;
  onEvent?: (e: BuildEvent) => void;
  /** Override parts of the recipe (experiments; the recipe used is written to suite.json). */
  recipe?: Partial<SuiteRecipe>;
}

export const SUITE_NAME = 'mini-8';
/** Backend the suite is trained on unless told otherwise (see the build report: wasm is ~25x faster than cpu here). */
export const SUITE_BACKEND: BackendChoice = 'wasm';

/** What the heads are, for suite.json (`mix` = the recipe's headMix; 1 = pure prototypes). */
function headsDescription(mix: number): string {
  const proto =
    'per class, the mean of the L2-normalised pretrained embeddings of that ' +
    "class's first train images, L2-normalised";
  const rows =
    mix >= 1
      ? proto
      : `normalize(${mix} * prototype + ${+(1 - mix).toFixed(6)} * r), with the prototype ${proto} and r a seeded ` +
        'random unit vector of the task and class';
  return (
    `CLIP-style zero-shot-like heads: rows ${rows} (weight [classes, dim]); logits = exp(logit_scale) * ` +
    'normalize(embedding) @ weight^T. Fitted once on the frozen pretrained encoder and never trained.'
  );
}

/**
 * The canonical view of a task's first `rows` train images: each image as it is in its source (MNIST or
 * Fashion-MNIST, before the task's transform), with the task's label. Heads are fitted on these.
 */
export function canonicalRows(d: TaskData, rows: number, sources: readonly ImageSource[]): TrainSet {
  const m = Math.min(rows, d.train.n);
  const per = d.train.images.length / Math.max(1, d.train.n);
  const images = new Uint8Array(m * per);
  for (let i = 0; i < m; i++) {
    const src = sources[d.train.origin.source[i]];
    const k = d.train.origin.index[i];
    images.set(src.images.subarray(k * per, (k + 1) * per), i * per);
  }
  return { images, labels: d.train.labels.slice(0, m), n: m };
}

export async function buildSuite(out: string, opts: SuiteBuildOptions = {}): Promise<SuiteManifest> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${opts.seed}`);
  const size = opts.size ?? 'full';
  if (!RECIPES[size]) throw new Error(`size must be 'full' or 'small', got '${size}'`);
  const recipe: SuiteRecipe = { ...RECIPES[size], ...(opts.recipe ?? {}) };
  const c = recipe.model;
  const root = suiteFolder(out);
  const emit = opts.onEvent ?? (() => undefined);
  const rel = (uri: string) => uri.slice(root.length + 1);
  const written: string[] = [];
  const phases: Record<string, number> = {};
  const lap = (name: string, since: number) => (phases[name] = Math.round((Date.now() - since) / 100) / 10);

  // 1. task data, written through core/data, and the same arrays in memory for training
  let t = Date.now();
  emit({ phase: 'data', state: 'start', tasks: TASKS.length });
  const dataRoot = joinUri(root, 'data');
  const data: TaskData[] = [];
  for (const task of TASKS) data.push(await buildTaskData(task.name, { seed, size }));
  const listing = await writeTaskDatasets(dataRoot, { seed, size, data });
  for (const w of listing) for (const d of [w.train, w.test]) written.push(d.uri, ...(d.jsonUri ? [d.jsonUri] : []));
  written.push(joinUri(dataRoot, 'tasks.json'));
  const sources = [await loadSource('mnist'), await loadSource('fashion')];
  emit({ phase: 'data', state: 'done', tasks: TASKS.length, seconds: lap('data', t) });

  const workers = opts.workers ?? Math.max(1, Math.min(os.availableParallelism(), TASKS.length));
  const pool = new JobPool(workers, opts.backend ?? SUITE_BACKEND);
  const results = new Map<string, TaskOutput>();
  let pre: PretrainOutput;
  let pretextClassNames: string[];
  try {
    // 2. pretrain on the pooled data
    t = Date.now();
    const pretext = pretextSet(data, {
      mode: recipe.pretext,
      rowsPerTask: recipe.pretrainRowsPerTask,
      clusters: recipe.pretextClusters,
      rng: rngFor(seed, 'pretext'),
    });
    pretextClassNames = pretext.classes;
    pre = await pool.pretrainSharded(
      {
        kind: 'pretrain',
        config: c,
        init: initParams(c, seed),
        data: pretext.set,
        pretextHead: randomHead(
          pretext.classes.length,
          c.projectionDim,
          recipe.pretextLogitScale,
          rngFor(seed, 'pretext-head'),
        ),
        recipe: recipe.pretrain,
        seed,
      },
      recipe.pretrainShards,
      (step, total, loss) => emit({ phase: 'pretrain', step, total, loss }),
    );
    emit({ phase: 'pretrain-done', seconds: lap('pretrain', t), lossStart: pre.lossStart, lossEnd: pre.lossEnd });
    written.push(...(await writeModel(joinUri(root, 'models', 'pretrained'), c, pre.params)));

    // 3. heads + fine-tuning, one job per task (targets first), writing each model as it finishes
    t = Date.now();
    let done = 0;
    await Promise.all(
      data.map(async (d) => {
        const r = (await pool.run(
          {
            kind: 'task',
            task: d.task.name,
            classes: d.task.classes,
            config: c,
            pretrained: pre.params,
            train: { images: d.train.images, labels: d.train.labels, n: d.train.n },
            headSet: canonicalRows(d, recipe.headImagesPerTask, sources),
            headLogitScale: recipe.headLogitScale,
            headCentre: recipe.headCentre,
            headMix: recipe.headMix,
            headKey: headKeyFor(recipe, d.task),
            recipe: recipe.finetune,
            seed,
          },
          (step, total, loss) => emit({ phase: 'task', task: d.task.name, step, total, loss }),
        )) as TaskOutput;
        results.set(d.task.name, r);
        written.push(...(await writeModel(joinUri(root, 'models', d.task.name), c, r.params)));
        written.push(
          await writeHead(joinUri(root, 'heads', `${d.task.name}.safetensors`), r.head, d.task.name, d.task.classNames),
        );
        emit({
          phase: 'task-done',
          task: d.task.name,
          done: ++done,
          total: data.length,
          seconds: r.seconds ?? 0,
          lossStart: r.lossStart,
          lossEnd: r.lossEnd,
        });
      }),
    );
    lap('finetune', t);
  } finally {
    await pool.close();
  }

  // 4. the manifest, with every file's hash
  t = Date.now();
  emit({ phase: 'write', state: 'start' });
  const store = storeFor(root);
  const files: Record<string, string> = {};
  for (const uri of [...written].sort()) {
    const st = await store.stat(uri);
    if (!st) throw new Error(`${uri}: written but not found`);
    files[rel(uri)] = await sha256Of(uri, st.size);
  }
  const tasks: SuiteTask[] = data.map((d) => {
    const r = results.get(d.task.name)!;
    return {
      name: d.task.name,
      kind: d.task.kind,
      classes: d.task.classes,
      classNames: [...d.task.classNames],
      transform: d.task.transformDoc,
      label: d.task.labelDoc,
      model: `models/${d.task.name}`,
      head: `heads/${d.task.name}.safetensors`,
      train: `data/${d.task.name}/train.safetensors`,
      test: `data/${d.task.name}/test.safetensors`,
      finetune: { lossStart: round(r.lossStart), lossEnd: round(r.lossEnd) },
    };
  });
  lap('manifest', t);
  const manifest: SuiteManifest = {
    format: SUITE_FORMAT,
    version: SUITE_VERSION,
    name: SUITE_NAME,
    seed,
    size,
    imageShape: [...IMAGE_SHAPE] as [number, number, number],
    pretrained: 'models/pretrained',
    pretext: {
      objective: recipe.pretext,
      description: PRETEXT_DESCRIPTIONS[recipe.pretext],
      classes: pretextClassNames,
      lossStart: round(pre.lossStart),
      lossEnd: round(pre.lossEnd),
    },
    heads: {
      kind: headsKind(recipe),
      description: headsDescription(recipe.headMix ?? 1),
      logitScale: recipe.headLogitScale,
    },
    recipe: recipe as unknown as Record<string, unknown>,
    tasks,
    targets: tasks.filter((x) => x.kind === 'target').map((x) => x.name),
    irrelevant: tasks.filter((x) => x.kind === 'irrelevant').map((x) => x.name),
    data: 'data',
    files,
    build: {
      startedAt,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      backend: pool.backend ?? 'unknown',
      workers,
      mergeflow: VERSION,
      phases,
    },
  };
  await putObject(joinUri(root, SUITE_FILE), Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8'));
  emit({ phase: 'write', state: 'done', seconds: manifest.build.seconds });
  return manifest;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
