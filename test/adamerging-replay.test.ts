/**
 * Replay guard: the recorded histories of an AdaMerging run (AdaMerging++, task-wise, labeled data, forced
 * continue-as-new after each epoch: run 0 validates, prepares, runs an epoch and continues as new; run 1 runs
 * the last epoch, merges, evaluates and publishes) must replay against today's workflow code, so a change that
 * would break in-flight runs fails here. Re-record with
 *   node dist/bench/adamerging_run.js --steps 4 --steps-per-epoch 2 --checkpoint-every 1 --granularity task \
 *     --variant ties --labeled --epochs-per-run 1 --record test/fixtures/histories
 * The `parallel: tasks` pair (adamerging-parallel-run-0/1.json, renamed from the bench's names) was recorded with
 *   node dist/bench/adamerging_run.js --steps 4 --steps-per-epoch 2 --checkpoint-every 1 --granularity task \
 *     --parallel tasks --epochs-per-run 1 --record DIR
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { historyFromFixture } from '../workers/history_fixture';
import { REPO } from './helpers/env';

Runtime.install({ logger: new DefaultLogger('WARN') });

const DIR = path.join(REPO, 'test', 'fixtures', 'histories');
const fixture = (i: number) => historyFromFixture(fs.readFileSync(path.join(DIR, `adamerging-run-${i}.json`), 'utf8'));

test('recorded AdaMerging histories replay against the current workflow code', { timeout: 120_000 }, async () => {
  const h0 = fixture(0);
  const h1 = fixture(1);
  const types = (h: typeof h0) => (h.events ?? []).map((e) => e.eventType);
  // the fixtures hold what they claim: a continue-as-new, then a run that completes
  assert.ok(h0.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes));
  assert.ok(h1.events?.some((e) => e.workflowExecutionCompletedEventAttributes));
  assert.ok(types(h0).length > 10 && types(h1).length > 10);
  const workflowsPath = require.resolve('../workflows');
  await Worker.runReplayHistory({ workflowsPath }, h0, 'adamerging-run-0');
  await Worker.runReplayHistory({ workflowsPath }, h1, 'adamerging-run-1');
});

test(
  'a recorded parallel: tasks run (gradient fan-out, reduce, continue-as-new) replays',
  { timeout: 120_000 },
  async () => {
    const workflowsPath = require.resolve('../workflows');
    for (const i of [0, 1]) {
      const h = historyFromFixture(fs.readFileSync(path.join(DIR, `adamerging-parallel-run-${i}.json`), 'utf8'));
      const names = (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
      assert.ok(names.includes('adaMergingTaskGradient') && names.includes('adaMergingApplyStep'), `run ${i} fans out`);
      await Worker.runReplayHistory({ workflowsPath }, h, `adamerging-parallel-run-${i}`);
    }
  },
);

test('an incompatible change of the workflow fails the replay', { timeout: 120_000 }, async () => {
  await assert.rejects(
    Worker.runReplayHistory(
      { workflowsPath: require.resolve('./helpers/changed_adamerging_workflow') },
      fixture(1),
      'adamerging-run-1',
    ),
    DeterminismViolationError,
  );
});
