/**
 * Does the entropy premise hold where AdaMerging actually goes? For each target task of a suite: accuracy and
 * mean prediction entropy of Task Arithmetic (λ 0.3) and of merged model folders (e.g. the `final/` and
 * `stepN/` folders that bench/adamerging_suite.ts writes, entropy and --supervised runs), and a flag where a
 * merge is surer than Task Arithmetic on a task yet less accurate ("surer and wronger": entropy minimisation is
 * rewarded for that move). The validity check in `suite report` tests the premise along the Task Arithmetic
 * path and at the single models; this tests it at the optimiser's end points.
 *
 *   node dist/bench/premise_path.js SUITE MODEL_FOLDER... [--limit 500] [--json]
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../core/models/clip_vit';
import { readClipVisionConfig } from '../core/models/clip_vit_load';
import { ensureBackend } from '../core/eval/evaluate';
import { openSuite } from '../core/suite/manifest';
import { combine, loadTaskData, measure, readValues, TaskData } from '../core/suite/validity';
import { opt } from './harness/args';

type Point = ReturnType<typeof measure>;

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--limit');
  const [suiteUri, ...folders] = args;
  if (!suiteUri || !folders.length) throw new Error('usage: premise_path SUITE MODEL_FOLDER... [--limit N] [--json]');
  await ensureBackend('tensorflow');
  const suite = await openSuite(suiteUri);
  const limit = Number(opt('limit', '500'));
  const c = await readClipVisionConfig(suite.pretrained);
  const tasks: TaskData[] = [];
  for (const name of suite.targets) tasks.push(await loadTaskData(suite, name, limit));
  const base = await readValues(suite.pretrained, c);
  const targets = await Promise.all(suite.targets.map((name) => readValues(suite.task(name).model, c)));
  const rows: { model: string; tasks: Record<string, Point> }[] = [];
  // Task Arithmetic at λ 0.3, then each folder as it is (θ0 with no task vectors added)
  const merges: [string, () => Promise<Params>][] = [
    [
      'Task Arithmetic',
      async () =>
        combine(
          c,
          base,
          targets,
          targets.map(() => 0.3),
        ),
    ],
    ...folders.map((f): [string, () => Promise<Params>] => [f, async () => combine(c, await readValues(f, c), [], [])]),
  ];
  for (const [label, build] of merges) {
    const params = await build();
    const row: Record<string, Point> = {};
    for (const t of tasks) row[t.name] = measure(params, c, t);
    tf.dispose(Object.values(params));
    rows.push({ model: label, tasks: row });
  }
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
    return;
  }
  const pct = (v: number) => (v * 100).toFixed(1);
  const head = `| model | avg. acc | Σ entropy | ${suite.targets.join(' | ')} |`;
  const lines = [head, head.replace(/[^|]+/g, '---')];
  const ref = rows[0].tasks;
  for (const r of rows) {
    const pts = suite.targets.map((n) => r.tasks[n]);
    const cells = suite.targets.map((n) => {
      const p = r.tasks[n];
      const flag = r !== rows[0] && p.entropy < ref[n].entropy && p.accuracy < ref[n].accuracy - 0.02 ? ' ⚠' : '';
      return `${pct(p.accuracy)} / ${p.entropy.toFixed(3)}${flag}`;
    });
    const avg = pts.reduce((a, p) => a + p.accuracy, 0) / pts.length;
    const sumH = pts.reduce((a, p) => a + p.entropy, 0);
    lines.push(`| ${r.model} | ${pct(avg)} | ${sumH.toFixed(3)} | ${cells.join(' | ')} |`);
  }
  process.stdout.write(
    lines.join('\n') +
      `\n\ncells: accuracy % / mean entropy (nats), ${limit} test images per task; ⚠ = surer than Task Arithmetic ` +
      'on that task but more than 2 points less accurate\n',
  );
}

main().catch((e) => {
  process.stderr.write(`premise_path: ${(e as Error).message}\n`);
  process.exit(1);
});
