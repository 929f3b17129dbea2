/**
 * Which single models make a task "surer and wronger"? Accuracy and mean prediction entropy of the pretrained
 * model and of every one of the suite's 24 fine-tuned models on every task's test split (through that task's
 * head). A model that is surer than the pretrained one on task k yet less accurate is a move entropy
 * minimisation rewards and accuracy punishes; a target set whose targets do that to each other is a poor one
 * for AdaMerging. A screen for choosing targets among the built tasks before running the validity check.
 *
 *   node dist/bench/suite_cross.js SUITE [--limit 300] [--json OUT.json]
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { readClipVisionConfig } from '../core/models/clip_vit_load';
import { ensureBackend } from '../core/eval/evaluate';
import { openSuite } from '../core/suite/manifest';
import { combine, loadTaskData, measure, readValues, TaskData } from '../core/suite/validity';
import { opt } from './harness/args';

type Point = ReturnType<typeof measure>;

async function main(): Promise<void> {
  const suiteUri = process.argv[2];
  if (!suiteUri || suiteUri.startsWith('--')) throw new Error('usage: suite_cross SUITE [--limit N] [--json OUT]');
  await ensureBackend('tensorflow');
  const suite = await openSuite(suiteUri);
  const limit = Number(opt('limit', '300'));
  const c = await readClipVisionConfig(suite.pretrained);
  const names = suite.manifest.tasks.map((t) => t.name);
  const tasks: (TaskData & { classes: number })[] = [];
  for (const name of names)
    tasks.push({ ...(await loadTaskData(suite, name, limit)), classes: suite.task(name).classes });
  const rows: Record<string, Record<string, Point>> = {};
  for (const model of ['pretrained', ...names]) {
    const dir = model === 'pretrained' ? suite.pretrained : suite.task(model).model;
    const params = combine(c, await readValues(dir, c), [], []);
    rows[model] = {};
    for (const t of tasks) rows[model][t.name] = measure(params, c, t);
    tf.dispose(Object.values(params));
    process.stderr.write(`${model} measured\n`);
  }
  const json = opt('json');
  if (json) fs.writeFileSync(json, JSON.stringify({ suite: suite.uri, limit, tasks: names, rows }, null, 1) + '\n');
  const cell = (p: Point) => `${(p.accuracy * 100).toFixed(1)} / ${p.entropy.toFixed(2)}`;
  const out = [
    `Single models on every task (${suite.uri}, ${limit} test images a task): accuracy % / mean entropy (nats).`,
    `"Surer and wronger": other models that are surer than the pretrained model on the task and more than 2`,
    `points less accurate than it.`,
    '',
    '| task | kind | classes | pretrained | own model | surer and wronger |',
    '|---|---|---:|---:|---:|---|',
  ];
  for (const t of tasks) {
    const pre = rows.pretrained[t.name];
    const bad = names
      .filter((m) => m !== t.name)
      .filter((m) => rows[m][t.name].entropy < pre.entropy && rows[m][t.name].accuracy < pre.accuracy - 0.02)
      .map((m) => `${m} (${cell(rows[m][t.name])})`);
    out.push(
      `| ${t.name} | ${suite.task(t.name).kind} | ${t.classes} | ${cell(pre)} | ${cell(rows[t.name][t.name])} | ${bad.join(', ') || '–'} |`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(`suite_cross: ${(e as Error).message}\n`);
  process.exit(1);
});
