/**
 * Recipe experiments for the mini-8 suite without re-running pretraining: take a built suite's data and
 * pretrained model, re-fit the heads and re-fine-tune the chosen targets with a variant of the recipe into a
 * new folder (data and the pretrained model are linked, not copied), then run the validity check on it.
 *
 *   node dist/bench/suite_lab.js FROM OUT [--targets a,b,...] [--json '{"finetune":{"steps":300}}']
 *        [--workers 2] [--limit 1000] [--reuse EARLIER_OUT]
 *
 * FROM may also be a build stopped after pretraining (no suite.json yet: a minimal one is written, --seed N).
 * --reuse links the models and heads of an earlier run with the same recipe instead of fine-tuning them again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTaskData, taskByName, TASKS } from '../core/data/tasks';
import { loadSource } from '../core/data/sources';
import { Checkpoint } from '../core/safetensors';
import { clipVisionParamShapes } from '../core/models/clip_vit';
import { readClipVisionConfig } from '../core/models/clip_vit_load';
import { normalizeUri } from '../core/store/uri';
import { canonicalRows } from '../core/suite/build';
import { writeHead, writeModel } from '../core/suite/io';
import { TaskOutput } from '../core/suite/jobs';
import { openSuite, SUITE_FILE, SUITE_FORMAT, SUITE_VERSION } from '../core/suite/manifest';
import { JobPool } from '../core/suite/pool';
import { headKeyFor, headsKind, RECIPES, SuiteRecipe } from '../core/suite/recipe';
import { suiteValidity, validityMarkdown } from '../core/suite/validity';
import { deepMerge, opt } from './harness/args';

/**
 * A build stopped after pretraining has data/ and models/pretrained but no suite.json: write a minimal one
 * (--seed, the full recipe with the pretrained model's own config, as a recipe variant may have changed it)
 * so the folder can serve as FROM.
 */
async function ensureManifest(from: string): Promise<string> {
  const dir = path.resolve(from);
  if (fs.existsSync(path.join(dir, SUITE_FILE))) return dir;
  const seed = Number(opt('seed') ?? 0);
  const model = await readClipVisionConfig(normalizeUri(path.join(dir, 'models', 'pretrained')));
  const recipe: SuiteRecipe = { ...RECIPES.full, model };
  const tasks = TASKS.map((t) => ({
    name: t.name,
    kind: t.kind,
    classes: t.classes,
    classNames: [...t.classNames],
    transform: t.transformDoc,
    label: t.labelDoc,
    model: `models/${t.name}`,
    head: `heads/${t.name}.safetensors`,
    train: `data/${t.name}/train.safetensors`,
    test: `data/${t.name}/test.safetensors`,
    finetune: { lossStart: 0, lossEnd: 0 },
  }));
  const manifest = {
    format: SUITE_FORMAT,
    version: SUITE_VERSION,
    name: 'mini-8',
    seed,
    size: 'full',
    imageShape: [1, 28, 28],
    pretrained: 'models/pretrained',
    pretext: { objective: recipe.pretext, description: '', classes: [], lossStart: 0, lossEnd: 0 },
    heads: {
      kind: headsKind(recipe),
      description: '',
      logitScale: recipe.headLogitScale,
    },
    recipe,
    tasks,
    targets: tasks.filter((t) => t.kind === 'target').map((t) => t.name),
    irrelevant: tasks.filter((t) => t.kind === 'irrelevant').map((t) => t.name),
    data: 'data',
    files: {},
    build: { startedAt: '', seconds: 0, backend: 'wasm', workers: 2, mergeflow: '', phases: {} },
  };
  fs.writeFileSync(path.join(dir, SUITE_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return dir;
}

async function main(): Promise<void> {
  const [from, out] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  if (!from || !out) throw new Error('usage: suite_lab FROM OUT [--targets a,b] [--json RECIPE] [--workers N]');
  const src = await openSuite(await ensureManifest(from));
  const m = src.manifest;
  const recipe = deepMerge(m.recipe as unknown as SuiteRecipe, JSON.parse(opt('json') ?? '{}'));
  const targets = (opt('targets') ?? src.targets.join(',')).split(',');
  const outDir = path.resolve(out);
  fs.mkdirSync(path.join(outDir, 'models'), { recursive: true });
  for (const [link, to] of [
    ['data', path.join(src.uri.replace(/^file:\/\//, ''), 'data')],
    [path.join('models', 'pretrained'), src.pretrained.replace(/^file:\/\//, '')],
  ]) {
    const p = path.join(outDir, link);
    if (!fs.existsSync(p)) fs.symlinkSync(to, p);
  }
  const c = await readClipVisionConfig(src.pretrained);
  const ck = await Checkpoint.open(src.pretrained + '/model.safetensors');
  const pretrained: Record<string, Float32Array> = {};
  for (const { name } of clipVisionParamShapes(c)) pretrained[name] = await ck.readFloat32(name);
  const sources = [await loadSource('mnist'), await loadSource('fashion')];
  const pool = new JobPool(Number(opt('workers') ?? 2), 'wasm');
  const t0 = Date.now();
  const results = new Map<string, TaskOutput>();
  try {
    await Promise.all(
      targets.map(async (name) => {
        const reuse = opt('reuse');
        if (reuse && fs.existsSync(path.join(reuse, 'models', name))) {
          // the same recipe fine-tunes a task the same way: link the earlier run's model and head
          fs.symlinkSync(path.resolve(reuse, 'models', name), path.join(outDir, 'models', name));
          fs.mkdirSync(path.join(outDir, 'heads'), { recursive: true });
          fs.symlinkSync(
            path.resolve(reuse, 'heads', `${name}.safetensors`),
            path.join(outDir, 'heads', `${name}.safetensors`),
          );
          results.set(name, { task: name, lossStart: 0, lossEnd: 0 } as TaskOutput);
          return;
        }
        const d = await buildTaskData(name, { seed: m.seed, size: m.size });
        const r = (await pool.run({
          kind: 'task',
          task: name,
          classes: d.task.classes,
          config: c,
          pretrained,
          train: { images: d.train.images, labels: d.train.labels, n: d.train.n },
          headSet: canonicalRows(d, recipe.headImagesPerTask, sources),
          headLogitScale: recipe.headLogitScale,
          headCentre: recipe.headCentre,
          headMix: recipe.headMix,
          headKey: headKeyFor(recipe, d.task),
          recipe: recipe.finetune,
          seed: m.seed,
        })) as TaskOutput;
        results.set(name, r);
        await writeModel(path.join(outDir, 'models', name), c, r.params);
        await writeHead(path.join(outDir, 'heads', `${name}.safetensors`), r.head, name, d.task.classNames);
        process.stderr.write(
          `${name}: fine-tuned in ${r.seconds?.toFixed(0)} s, loss ${r.lossStart.toFixed(3)} -> ${r.lossEnd.toFixed(3)}\n`,
        );
      }),
    );
  } finally {
    await pool.close();
  }
  const tasks = targets.map((name) => {
    const t = taskByName(name);
    return {
      ...src.task(name),
      kind: 'target' as const,
      model: `models/${name}`,
      head: `heads/${name}.safetensors`,
      train: `data/${name}/train.safetensors`,
      test: `data/${name}/test.safetensors`,
      classes: t.classes,
      finetune: { lossStart: results.get(name)!.lossStart, lossEnd: results.get(name)!.lossEnd },
    };
  });
  const manifest = { ...m, recipe, tasks, targets, irrelevant: [], files: {} };
  fs.writeFileSync(path.join(outDir, SUITE_FILE), JSON.stringify(manifest, null, 2) + '\n');
  process.stderr.write(`fine-tuning: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  const v = await suiteValidity(outDir, { limit: Number(opt('limit') ?? 1000) });
  fs.writeFileSync(path.join(outDir, 'validity.json'), JSON.stringify(v, null, 2) + '\n');
  process.stdout.write(`${outDir}\n${JSON.stringify(opt('json') ?? '{}')}\n` + validityMarkdown(v));
  process.stdout.write(
    `averages: pretrained ${(v.averages.pretrained * 100).toFixed(1)}, TA ${(v.averages.taskArithmetic * 100).toFixed(1)}, individual ${(v.averages.individual * 100).toFixed(1)}; ${v.seconds} s\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`suite_lab: ${(e as Error).stack}\n`);
  process.exit(1);
});
