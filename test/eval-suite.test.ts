/**
 * Evaluation: `mergeflow eval --json` shape and values (checked against predict + argmax), the evaluateModel
 * activity's core, and bad inputs (labels out of range, wrong image size, unlabeled data, not a suite).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDataset } from '../core/data/dataset';
import { ensureBackend, evaluateModel } from '../core/eval/evaluate';
import { predict } from '../core/eval/predict';
import { SafetensorsFile } from '../core/safetensors';
import { openSuite } from '../core/suite/manifest';
import { fileUri, runCli, tmpDir } from './helpers/env';

describe('eval', () => {
  const dir = tmpDir('eval');
  const suiteDir = path.join(dir, 'suite');

  before(async () => {
    const r = await runCli(['suite', 'build', suiteDir, '--size', 'small', '--seed', '3'], {}, 120_000);
    assert.equal(r.code, 0, r.stderr);
    await ensureBackend();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('eval --json prints exactly { average, tasks } over the 8 targets', async () => {
    const suite = await openSuite(suiteDir);
    const r = await runCli(['eval', suite.task('digits').model, '--suite', suiteDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one JSON object on one line');
    const j = JSON.parse(lines[0]) as { average: number; tasks: Record<string, number> };
    assert.deepEqual(Object.keys(j), ['average', 'tasks']);
    assert.deepEqual(Object.keys(j.tasks), suite.targets);
    for (const v of Object.values(j.tasks)) assert.ok(typeof v === 'number' && v >= 0 && v <= 1);
    const mean = Object.values(j.tasks).reduce((a, b) => a + b, 0) / suite.targets.length;
    assert.ok(Math.abs(j.average - mean) < 1e-12);

    // the same model through the API, and the plain text form
    const api = await evaluateModel(
      suite.task('digits').model,
      suite.targets.map((n) => ({ name: n, test: suite.task(n).test, head: suite.task(n).head })),
    );
    assert.deepEqual(api.tasks, j.tasks);
    const txt = await runCli(['eval', suite.task('digits').model, '--suite', suiteDir, '--tasks', 'digits,fashion']);
    assert.equal(txt.code, 0, txt.stderr);
    assert.match(txt.stdout, /^digits\s+\d+\.\d\d % {2}\(\d+\/128\)$/m);
    assert.match(txt.stdout, /^average\s+\d+\.\d\d %$/m);
  });

  it('accuracy equals argmax of the predicted logits against the labels', async () => {
    const suite = await openSuite(suiteDir);
    for (const name of ['fashion-groups', 'digits-parity']) {
      const t = suite.task(name);
      const out = fileUri(path.join(dir, `${name}-logits.safetensors`));
      await predict(suite.pretrained, t.test, out, { head: t.head });
      const f = await SafetensorsFile.open(out);
      const logits = await f.readFloat32('logits');
      const labels = (await (await import('../core/data/dataset')).openDataset(t.test)).labels!;
      let right = 0;
      for (let i = 0; i < labels.length; i++) {
        let best = 0;
        for (let c = 1; c < t.classes; c++) if (logits[i * t.classes + c] > logits[i * t.classes + best]) best = c;
        if (best === labels[i]) right++;
      }
      const r = await evaluateModel(suite.pretrained, [{ name, test: t.test, head: t.head }]);
      assert.equal(r.tasks[name], right / labels.length);
      assert.equal(r.details[0].correct, right);
    }
  });

  it('labels out of range, wrong image size, unlabeled data, not a suite: each one clear line', async () => {
    const suite = await openSuite(suiteDir);
    const t = suite.task('fashion-groups'); // 4 classes
    const n = 6;
    const bad = fileUri(path.join(dir, 'bad-labels.safetensors'));
    await writeDataset(bad, { inputs: new Uint8Array(n * 784), shape: [n, 1, 28, 28], labels: [0, 1, 2, 3, 7, 1] });
    const spec = (test: string) => [{ name: 'x', test, head: t.head }];
    await assert.rejects(evaluateModel(suite.pretrained, spec(bad)), (e: Error) => {
      assert.match(e.message, /label 7 at row 4 is outside the head's 4 classes \[0, 4\)/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    const big = fileUri(path.join(dir, 'big.safetensors'));
    await writeDataset(big, { inputs: new Uint8Array(2 * 32 * 32), shape: [2, 1, 32, 32], labels: [0, 1] });
    await assert.rejects(
      evaluateModel(suite.pretrained, spec(big)),
      /images are 1x32x32 \(CxHxW\) but the model expects 1x28x28/,
    );
    const unl = fileUri(path.join(dir, 'unlabeled.safetensors'));
    await writeDataset(unl, { inputs: new Uint8Array(2 * 784), shape: [2, 1, 28, 28] });
    await assert.rejects(
      evaluateModel(suite.pretrained, spec(unl)),
      /no 'labels' tensor; evaluation needs a labeled test split/,
    );

    const r = await runCli(['eval', suite.pretrained, '--suite', dir, '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /not a suite \(no suite\.json\)/);
    const r2 = await runCli(['eval', suite.pretrained, '--suite', suiteDir, '--tasks', 'nope']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /no task 'nope' in this suite/);
  });
});
