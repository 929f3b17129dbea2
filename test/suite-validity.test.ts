/**
 * The suite validity check (core/suite/validity.ts): Spearman's ρ, and the sweep on a small suite checked
 * against the ordinary evaluation path (evaluateModel on the real checkpoints, the report's real TA merge).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateModel } from '../core/eval/evaluate';
import { openSuite } from '../core/suite/manifest';
import { OWN_STEPS, ranks, spearman, suiteValidity, ValidityReport } from '../core/suite/validity';
import { runCli, tmpDir } from './helpers/env';

describe('suite validity: Spearman', () => {
  it('ranks average ties', () => {
    assert.deepEqual(ranks([3, 1, 2]), [3, 1, 2]);
    assert.deepEqual(ranks([5, 5, 1, 7]), [2.5, 2.5, 1, 4]);
  });
  it('is 1 for any increasing relation, -1 for a decreasing one, 0 against a constant', () => {
    const x = [0.1, 0.5, 0.2, 0.9, 0.3];
    assert.equal(
      spearman(
        x,
        x.map((v) => Math.exp(3 * v)),
      ),
      1,
    );
    assert.equal(
      spearman(
        x,
        x.map((v) => -v * v),
      ),
      -1,
    );
    assert.equal(spearman(x, [1, 1, 1, 1, 1]), 0);
  });
  it('matches the textbook formula 1 - 6 Σd² / (n(n²-1)) when there are no ties', () => {
    const a = [1, 2, 3, 4, 5, 6];
    const b = [2, 1, 4, 3, 6, 5];
    const d2 = a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
    assert.ok(Math.abs(spearman(a, b) - (1 - (6 * d2) / (6 * 35))) < 1e-12);
  });
});

describe('suite validity: the sweep on a small suite', () => {
  const dir = tmpDir('validity');
  const suiteDir = path.join(dir, 'suite');
  let v: ValidityReport;

  before(async () => {
    const r = await runCli(['suite', 'build', suiteDir, '--size', 'small', '--seed', '5'], {}, 120_000);
    assert.equal(r.code, 0, r.stderr);
    v = await suiteValidity(suiteDir, { limit: 64 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('measures every target at λ = 0..1 and each target model alone', async () => {
    const suite = await openSuite(suiteDir);
    assert.deepEqual(
      v.tasks.map((t) => t.task),
      suite.targets,
    );
    for (const t of v.tasks) {
      assert.deepEqual(
        t.points.map((p) => p.point),
        [...v.lambdas.map((l) => `ta@${l}`), ...suite.targets],
      );
      for (const p of t.points) {
        assert.ok(p.accuracy >= 0 && p.accuracy <= 1);
        assert.ok(p.entropy >= 0 && p.entropy <= Math.log(t.classes) + 1e-6, `${t.task} ${p.point} H ${p.entropy}`);
      }
      assert.equal(
        t.correlation,
        spearman(
          t.points.map((p) => p.entropy),
          t.points.map((p) => 1 - p.accuracy),
        ),
      );
      assert.equal(t.chance, 1 / t.classes);
      // the own-direction diagnostic starts at Task Arithmetic λ 0.3: the same merge, so the same measure
      assert.deepEqual(
        t.own.map((p) => p.point),
        OWN_STEPS.map((mu) => `own+${mu}`),
      );
      const ta = t.points.find((p) => p.point === 'ta@0.3')!;
      assert.equal(t.own[0].accuracy, ta.accuracy);
      assert.equal(t.own[0].entropy, ta.entropy);
      assert.equal(t.ownDelta.entropy, t.own[t.own.length - 1].entropy - t.own[0].entropy);
      const k = v.tasks.indexOf(t);
      assert.equal(t.cross.own, v.crossEntropy[k][k]);
      const others = v.crossEntropy.reduce((sum, row, j) => (j === k ? sum : sum + row[k]), 0);
      assert.ok(Math.abs(t.cross.others - others) < 1e-12);
    }
  });

  it('the cross-entropy matrix is K×K and finite; with λ 0.3 left out of the sweep it is still the start', async () => {
    assert.equal(v.crossEntropy.length, 8);
    for (const row of v.crossEntropy) {
      assert.equal(row.length, 8);
      for (const x of row) assert.ok(Number.isFinite(x));
    }
    const w = await suiteValidity(suiteDir, { limit: 16, lambdas: [0, 1] });
    assert.deepEqual(w.lambdas, [0, 0.3, 1]);
    for (const t of w.tasks) assert.equal(t.points.length, 3 + 8);
  });

  it('the pretrained and individual points equal evaluateModel on the real checkpoints', async () => {
    const suite = await openSuite(suiteDir);
    const spec = (n: string) => [{ name: n, test: suite.task(n).test, head: suite.task(n).head }];
    for (const t of v.tasks.slice(0, 3)) {
      const pre = await evaluateModel(suite.pretrained, spec(t.task), { limit: 64 });
      assert.equal(t.pretrained.accuracy, pre.tasks[t.task]);
      const ind = await evaluateModel(suite.task(t.task).model, spec(t.task), { limit: 64 });
      assert.equal(t.individual.accuracy, ind.tasks[t.task]);
    }
  });

  it('a suite of another version is refused with a one-line rebuild message', async () => {
    const old = path.join(dir, 'old');
    fs.mkdirSync(old);
    const m = JSON.parse(fs.readFileSync(path.join(suiteDir, 'suite.json'), 'utf8')) as { version: number };
    fs.writeFileSync(path.join(old, 'suite.json'), JSON.stringify({ ...m, version: 1 }));
    await assert.rejects(openSuite(old), (e: Error) => {
      assert.match(e.message, /suite version 1, but this mergeflow reads version \d+ only; rebuild it/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  it('checks follow from the numbers', () => {
    const byName = new Map(v.checks.map((k) => [k.name, k]));
    assert.equal(
      byName.get('entropy tracks error')!.ok,
      v.tasks.every((t) => t.correlation >= 0.5),
    );
    assert.equal(
      byName.get('pretrained above chance')!.ok,
      v.tasks.every((t) => t.pretrained.accuracy >= t.chance),
    );
    assert.equal(
      byName.get('Task Arithmetic lifts the pretrained model')!.ok,
      v.averages.taskArithmetic - v.averages.pretrained >= 0.08,
    );
    assert.equal(
      v.ok,
      v.checks.every((k) => k.ok),
    );
  });

  it('suite report includes the check and its TA point agrees with the real Task Arithmetic merge', async () => {
    const out = path.join(dir, 'report');
    const r = await runCli(['suite', 'report', suiteDir, '--json', '--limit', '64', '--out', out], {}, 240_000);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as {
      rows: { method: string; tasks: Record<string, number> }[];
      validity: ValidityReport;
    };
    assert.equal(rep.validity.tasks.length, 8);
    const ta = rep.rows.find((row) => row.method === 'task_arithmetic')!;
    for (const t of rep.validity.tasks) {
      const mem = t.points.find((p) => p.point === 'ta@0.3')!.accuracy;
      // the in-memory merge and the pipeline's may differ in float rounding: at most one image of 64
      assert.ok(Math.abs(mem - ta.tasks[t.task]) <= 1 / 64 + 1e-12, `${t.task}: ${mem} vs ${ta.tasks[t.task]}`);
    }
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(md, /## Validity: does entropy track error\? \((PASS|FAIL)\)/);
    assert.match(md, /\| digits \| -?\d\.\d\d \|/);
    // --check: exit 1 exactly when the check fails (same suite, same limit: same verdict)
    const c = await runCli(['suite', 'report', suiteDir, '--limit', '64', '--out', out, '--check'], {}, 240_000);
    assert.equal(c.code, rep.validity.ok ? 0 : 1, c.stderr);
    if (c.code === 1) assert.match(c.stderr, /fails the validity check/);
  });
});
