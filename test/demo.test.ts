/**
 * `mergeflow demo`, as a newcomer runs it: builds the small mini-8 suite into S3, merges it through Temporal
 * with the worker in the same process, evaluates and prints the baseline table; a second run reuses the suite
 * and gives the same numbers.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { storeFor, joinUri } from '../core/store';
import type { SuiteReport } from '../core/suite/report';
import { SUITE_VERSION } from '../core/suite/manifest';
import { runCli, s3Prefix, tmpDir, uniq } from './helpers/env';

const ROWS = [
  'Pretrained',
  'Individual',
  'Weight Averaging',
  'Task Arithmetic',
  'TIES-Merging',
  'AdaMerging (layer-wise)',
];

describe('mergeflow demo', () => {
  const dir = tmpDir('demo');
  const prefix = s3Prefix('demo');
  const env = { MERGEFLOW_TASK_QUEUE: uniq('demo-queue'), MERGEFLOW_LOG_LEVEL: 'error' };
  let connection: Connection;
  let client: Client;

  before(async () => {
    connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
    client = new Client({ connection });
  });
  after(async () => {
    await connection.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds the small suite into S3, merges through Temporal, prints the table; a second run reuses the suite', async () => {
    const small = ['--size', 'small', '--adamerging-steps', '3'];
    const first = await runCli(
      ['demo', '--no-stack', ...small, '--validity', '--prefix', prefix, '--out', path.join(dir, 'r1')],
      env,
      300_000,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /building the mini-8 suite \(small, seed 0\)/);

    // the table: a header with the 8 target tasks, one row per method, each with 9 percentages
    const lines = first.stdout.split('\n');
    assert.match(lines[0], /^\| Method \| digits \| fashion \|.*\| Avg\. \|$/);
    for (const label of ROWS) {
      const row = lines.find((l) => l.startsWith(`| ${label} |`));
      assert.ok(row, `row ${label} in\n${first.stdout}`);
      const cells = row.split('|').slice(2, -1);
      assert.equal(cells.length, 9, row);
      for (const c of cells) assert.match(c.trim(), /^(\*\*)?\d{1,3}\.\d(\*\*)?$/, row);
    }

    // the report files, and the merged models in S3 with their manifests, each written by a completed workflow
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'r1', 'report.json'), 'utf8')) as SuiteReport;
    assert.deepEqual(
      report.rows.map((r) => r.label),
      ROWS,
    );
    assert.ok(fs.statSync(path.join(dir, 'r1', 'report.png')).size > 1000);
    // the validity check: printed, in report.json (8 targets, 19 sweep points each) and drawn
    assert.match(first.stdout, /## Validity: does entropy track error\? \((PASS|FAIL)\)/);
    assert.equal(report.validity!.tasks.length, 8);
    for (const t of report.validity!.tasks) assert.equal(t.points.length, 19);
    assert.ok(fs.statSync(path.join(dir, 'r1', 'validity.png')).size > 1000);
    const suiteUri = joinUri(prefix, `mini-8-v${SUITE_VERSION}-small-seed0`);
    assert.equal(report.suite, suiteUri);
    for (const r of report.rows.slice(2)) {
      assert.equal(r.checkpoint, joinUri(suiteUri, 'merged', r.method));
      for (const f of ['model.safetensors', 'config.json', 'mergeflow.manifest.json'])
        assert.ok(await storeFor(prefix).stat(joinUri(r.checkpoint!, f)), `${r.checkpoint}/${f}`);
    }
    const ids = [...first.stderr.matchAll(/workflow (merge-demo-\S+)/g)].map((m) => m[1]);
    assert.equal(ids.length, 4, first.stderr);
    for (const id of ids) {
      const d = await client.workflow.getHandle(id).describe();
      assert.equal(d.status.name, 'COMPLETED', id);
      assert.equal(d.taskQueue, env.MERGEFLOW_TASK_QUEUE);
    }

    // second run: the suite is reused, the merges run again, and every number is the same
    const second = await runCli(
      ['demo', '--no-stack', ...small, '--prefix', prefix, '--out', path.join(dir, 'r2'), '--json'],
      env,
      300_000,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /using the suite built earlier/);
    assert.doesNotMatch(second.stderr, /building the mini-8 suite/);
    const again = JSON.parse(second.stdout) as SuiteReport;
    assert.deepEqual(
      again.rows.map((r) => [r.label, r.tasks, r.average]),
      report.rows.map((r) => [r.label, r.tasks, r.average]),
    );
  });

  it('by default: the committed full suite, unpacked; individual models 10+ points above pretrained; AdaMerging row', async () => {
    const out = path.join(dir, 'full');
    const r = await runCli(
      ['demo', '--no-stack', '--adamerging-steps', '10', '--prefix', s3Prefix('demo-full'), '--out', out, '--json'],
      env,
      600_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /unpacking the committed suite core\/suite\/packs\/mini-8-v\d+-full-seed0 into s3:/);
    assert.doesNotMatch(r.stderr, /building the mini-8 suite/);
    const report = JSON.parse(r.stdout) as SuiteReport;
    assert.equal(report.size, 'full');
    assert.deepEqual(
      report.rows.map((x) => x.label),
      ROWS,
    );
    const avg = Object.fromEntries(report.rows.map((x) => [x.method, x.average]));
    assert.ok(avg.individual >= avg.pretrained + 0.1, JSON.stringify(avg));
    assert.ok(avg.task_arithmetic > avg.pretrained, JSON.stringify(avg));
    assert.equal(report.validity, undefined);
    const ada = [...r.stderr.matchAll(/workflow (merge-demo-adamerging\S*)/g)].map((m) => m[1]);
    assert.equal(ada.length, 1, r.stderr);
    const d = await client.workflow.getHandle(ada[0]).describe();
    assert.equal(d.type, 'adaMergingRun');
    assert.equal(d.status.name, 'COMPLETED');
  });

  it('a bad --size or --seed is a one-line usage error with exit 2', async () => {
    const r = await runCli(['demo', '--no-stack', '--size', 'huge'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--size must be 'small' or 'full', got 'huge'/);
    const s = await runCli(['demo', '--no-stack', '--seed', 'x'], env);
    assert.equal(s.code, 2, s.stderr);
    assert.equal(s.stderr.trim().split('\n').length, 1, s.stderr);
    assert.match(s.stderr, /--seed must be an integer >= 0/);
  });
});
