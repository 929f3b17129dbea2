/**
 * The Frank-Wolfe oracle's score matrix on a suite: for each target task, the gradient of its cross-entropy on
 * the proxy rows of iteration 0 at a starting point (the pretrained model by default), and every candidate's
 * task-wise score Σp cos(g_p, ·) against its full weights θm (the LMO's) and against its task vector τm.
 * Prints both matrices (targets × candidates, the lowest per row marked) to see how the oracle ranks the pool.
 *
 *   node dist/bench/fw_oracle_matrix.js SUITE [--irrelevant 4] [--samples 100]
 */
import { ensureBackend } from '../core/eval/evaluate';
import { openDataset } from '../core/data/dataset';
import { clipVisionParamShapes } from '../core/models/clip_vit';
import { readClipVisionConfig } from '../core/models/clip_vit_load';
import { loadHead } from '../core/models/head';
import { objectiveGradient } from '../core/merge/frank_wolfe/objective';
import { checkpointSource, memorySource, scoreCandidates } from '../core/merge/frank_wolfe/oracle';
import { taskScores } from '../core/merge/frank_wolfe/oracle_scores';
import { proxyRows, readBatches, toParams } from '../core/merge/frank_wolfe/local_run';
import { Checkpoint } from '../core/safetensors';
import { joinUri } from '../core/store';
import { openSuite } from '../core/suite/manifest';
import { opt } from './harness/args';
import * as tf from '@tensorflow/tfjs-core';

async function readAll(uri: string, tensors: readonly string[]): Promise<Record<string, Float32Array>> {
  const ck = await Checkpoint.open(joinUri(uri, 'model.safetensors'));
  const out: Record<string, Float32Array> = {};
  for (const n of tensors) out[n] = await ck.readFloat32(n);
  return out;
}

async function main(): Promise<void> {
  const suite = await openSuite(process.argv[2]);
  await ensureBackend('tensorflow');
  const n = Number(opt('irrelevant', '4'));
  const samples = Number(opt('samples', '100'));
  const config = await readClipVisionConfig(suite.pretrained);
  const tensors = clipVisionParamShapes(config).map((s) => s.name);
  const pool = [...suite.targets, ...suite.irrelevant.slice(0, n)];
  const theta0 = await readAll(suite.pretrained, tensors);
  const weights = pool.map((m) => checkpointSource(m, suite.task(m).model));
  const vectors = [];
  for (const m of pool) {
    const v = await readAll(suite.task(m).model, tensors);
    for (const t of tensors) for (let i = 0; i < v[t].length; i++) v[t][i] -= theta0[t][i];
    vectors.push(memorySource(m, v));
  }
  const params = toParams(config, theta0);
  const rows: { target: string; w: number[]; v: number[] }[] = [];
  for (const target of suite.targets) {
    const t = suite.task(target);
    const ds = await openDataset(t.train);
    const batches = await readBatches(ds, proxyRows(0, target, ds.n, samples, 0), 16, true);
    const g = objectiveGradient(config, params, tensors, [{ name: target, head: await loadHead(t.head), batches }], {
      kind: 'cross_entropy',
      scaleTasks: suite.targets.length,
    });
    rows.push({
      target,
      w: taskScores(await scoreCandidates(g.grad, tensors, weights)),
      v: taskScores(await scoreCandidates(g.grad, tensors, vectors)),
    });
  }
  tf.dispose(Object.values(params));
  const short = (s: string) => s.replace('digits', 'd').replace('fashion', 'f');
  for (const key of ['w', 'v'] as const) {
    process.stdout.write(
      `\n${key === 'w' ? 'full weights θm (the LMO)' : 'task vectors τm'}: Σp cos, lowest marked *\n`,
    );
    process.stdout.write(`${'target'.padEnd(10)} ${pool.map((m) => short(m).padStart(11)).join('')}\n`);
    for (const r of rows) {
      const s = r[key];
      const min = Math.min(...s);
      process.stdout.write(
        `${short(r.target).padEnd(10)} ${s.map((x) => `${x.toFixed(3)}${x === min ? '*' : ' '}`.padStart(11)).join('')}\n`,
      );
    }
  }
}

main().catch((e) => {
  process.stderr.write(`fw_oracle_matrix: ${(e as Error).stack}\n`);
  process.exit(1);
});
