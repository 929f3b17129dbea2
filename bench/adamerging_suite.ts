/**
 * AdaMerging on a mini-8 suite in this process (no Temporal): learn λ with Adam on the targets' unlabeled
 * test inputs, write the merged model, evaluate it with labels, and print the accuracy next to the suite's
 * pretrained / Task Arithmetic / individual figures, with the time per step.
 *
 *   node dist/bench/adamerging_suite.js SUITE [--granularity layer|task] [--steps 500] [--ties 0.2]
 *        [--batch 16] [--lr 1e-3] [--limit 1000] [--every 100] [--out DIR] [--supervised]
 *        [--init 0.3] [--from OUT/lambda.json]
 *
 * --supervised replaces the entropy by cross-entropy with the test labels: not AdaMerging, but an upper bound
 * of what learning these coefficients can reach on the suite (is a shortfall the suite's or the objective's?).
 * Every run writes its final λ to OUT/lambda.json; --from starts another run there (e.g. entropy from the
 * supervised end point: does entropy minimisation stay at the labels' optimum or leave it?).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureBackend, evaluateModel } from '../core/eval/evaluate';
import { Granularity, LambdaLayout } from '../core/merge/adamerging/coefficients';
import { adamOptimizer, runAdaMergingLocal } from '../core/merge/adamerging/local_run';
import type { BatchObjective } from '../core/merge/adamerging/gradient';
import { ADAM_DEFAULTS } from '../core/optim/adam';
import { adaMergingTasks } from '../core/suite/config';
import { openSuite, Suite } from '../core/suite/manifest';
import { writeLambdaModel } from './sweep/lambda_model';
import { opt } from './harness/args';

/** θ0 + Σk clamp(λk^l) τk^l over the suite's targets, written as a model folder, then evaluated on the targets. */
async function evaluateLambda(
  suite: Suite,
  layout: LambdaLayout,
  lambda: Float32Array,
  dir: string,
  limit: number,
): Promise<{ average: number; tasks: Record<string, number> }> {
  const models = suite.targets.map((n) => suite.task(n).model);
  await writeLambdaModel(suite.pretrained, models, layout, lambda, dir);
  const r = await evaluateModel(
    dir,
    suite.targets.map((n) => ({ name: n, test: suite.task(n).test, head: suite.task(n).head })),
    { limit },
  );
  return { average: r.average, tasks: r.tasks };
}

/** Mean cross-entropy of the logits against the batch's labels (the --supervised upper bound). */
const crossEntropy: BatchObjective = (logits, batch) => {
  if (!batch.labels) throw new Error('--supervised: the task data has no labels');
  const onehot = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
};

async function main(): Promise<void> {
  const suiteUri = process.argv[2];
  if (!suiteUri || suiteUri.startsWith('--')) throw new Error('usage: adamerging_suite SUITE [options]');
  const suite = await openSuite(suiteUri);
  process.stderr.write(`backend: ${await ensureBackend('tensorflow')}\n`);
  const granularity = opt('granularity', 'layer') as Granularity;
  const steps = Number(opt('steps', '500'));
  const every = Number(opt('every', '100'));
  const limit = Number(opt('limit', '1000'));
  const ties = opt('ties');
  const lr = Number(opt('lr', String(ADAM_DEFAULTS.lr)));
  const out = opt('out') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'adamerging-'));
  const checkpoints: { step: number; lambda: Float32Array }[] = [];
  const fromFile = opt('from');
  const from = fromFile
    ? { step: 0, lambda: Float32Array.from(JSON.parse(fs.readFileSync(fromFile, 'utf8')).lambda as number[]) }
    : undefined;
  const r = await runAdaMergingLocal({
    pretrained: suite.pretrained,
    tasks: adaMergingTasks(suite),
    granularity,
    steps,
    seed: Number(opt('seed', '0')),
    batchSize: Number(opt('batch', '16')),
    tiesKeep: ties === undefined ? undefined : Number(ties),
    objective: process.argv.includes('--supervised') ? crossEntropy : undefined,
    optimizer: adamOptimizer({ lr }),
    init: opt('init') === undefined ? undefined : Number(opt('init')),
    from,
    onStep: ({ step, lossPerTask, lambda, seconds }) => {
      const s = step + 1;
      if (s % 10 === 0 || s === 1)
        process.stderr.write(
          `step ${s}/${steps} loss ${lossPerTask.reduce((a, b) => a + b, 0).toFixed(4)} (${seconds.toFixed(2)} s)\n`,
        );
      if (s % every === 0 && s !== steps) checkpoints.push({ step: s, lambda });
    },
  });
  const pct = (v: number) => (v * 100).toFixed(1);
  for (const cp of checkpoints) {
    const e = await evaluateLambda(suite, r.layout, cp.lambda, path.join(out, `step${cp.step}`), limit);
    process.stdout.write(`step ${cp.step}: avg ${pct(e.average)}\n`);
  }
  const e = await evaluateLambda(suite, r.layout, r.lambda, path.join(out, 'final'), limit);
  const sec = r.secondsPerStep.slice(1);
  const mean = sec.reduce((a, b) => a + b, 0) / Math.max(1, sec.length);
  process.stdout.write(
    `${process.argv.includes('--supervised') ? 'SUPERVISED (labels) ' : ''}AdaMerging ${granularity}${ties ? `++ (keep ${ties})` : ''}, ${steps} steps, lr ${lr}: avg ${pct(e.average)} | ` +
      Object.entries(e.tasks)
        .map(([k, v]) => `${k} ${pct(v)}`)
        .join(', ') +
      `\nλ per task (mean): ${r.summary.map((s) => `${s.task} ${s.mean.toFixed(3)}`).join(', ')}\n` +
      `time per step: ${mean.toFixed(3)} s (mean of steps 2..${steps})\n`,
  );
  fs.writeFileSync(path.join(out, 'lambda.json'), JSON.stringify({ lambda: Array.from(r.lambda) }));
  fs.writeFileSync(
    path.join(out, 'adamerging.json'),
    JSON.stringify({ granularity, steps, lr, ties, result: e, summary: r.summary, losses: r.losses }, null, 1),
  );
}

main().catch((e) => {
  process.stderr.write(`adamerging_suite: ${(e as Error).stack}\n`);
  process.exit(1);
});
