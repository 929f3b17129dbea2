/**
 * Replay guard: the recorded histories of a Frank-Wolfe run (FW-Hard, layer-wise oracle, TA start, 3 iterations
 * on 3 workers, continue-as-new after every iteration: run 0 validates, runs the TA start as a child workflow and
 * one iteration, then continues as new; run 1 runs the last iteration, writes, evaluates and publishes) must
 * replay against today's workflow code. Re-record with
 *   MERGEFLOW_RECORD_FW_HISTORIES=test/fixtures/histories node --test dist/test/frank-wolfe-flow.test.js
 * (it writes the first and the last run of its continue-as-new test; keep them as -0 and -1). The histories of
 * a run with resume support (patch 'fw-resume-ledger': run record, memo, ledger) terminated after an iteration
 * and of its resumed run come from
 *   MERGEFLOW_RECORD_FW_HISTORIES=test/fixtures/histories node --test dist/test/frank-wolfe-resume.test.js
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
/** The recorded run's workflow id (the TA start's child workflow id is derived from it). */
function workflowIdOf(h: ReturnType<typeof fixture>): string {
  const child = h.events?.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
  const id = child?.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId ?? '';
  assert.match(id, /-start$/);
  return id.replace(/-start$/, '');
}

const fixture = (i: number) => historyFromFixture(fs.readFileSync(path.join(DIR, `frank-wolfe-run-${i}.json`), 'utf8'));

test('recorded Frank-Wolfe histories replay against the current workflow code', { timeout: 120_000 }, async () => {
  const h0 = fixture(0);
  const h1 = fixture(1);
  // the fixtures hold what they claim: a child workflow and a continue-as-new, then a run that completes
  assert.ok(h0.events?.some((e) => e.childWorkflowExecutionCompletedEventAttributes));
  assert.ok(h0.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes));
  assert.ok(h1.events?.some((e) => e.workflowExecutionCompletedEventAttributes));
  const workflowsPath = require.resolve('../workflows');
  const id = workflowIdOf(h0);
  await Worker.runReplayHistory({ workflowsPath }, h0, id);
  await Worker.runReplayHistory({ workflowsPath }, h1, id);
});

test('an incompatible change of the Frank-Wolfe workflow fails the replay', { timeout: 120_000 }, async () => {
  await assert.rejects(
    Worker.runReplayHistory(
      { workflowsPath: require.resolve('./helpers/changed_frank_wolfe_workflow') },
      fixture(1),
      workflowIdOf(fixture(0)),
    ),
    DeterminismViolationError,
  );
});

test(
  'a stopped run with resume support and its resumed run replay against the current code',
  { timeout: 120_000 },
  async () => {
    const stopped = historyFromFixture(fs.readFileSync(path.join(DIR, 'frank-wolfe-stopped.json'), 'utf8'));
    const resumed = historyFromFixture(fs.readFileSync(path.join(DIR, 'frank-wolfe-resumed.json'), 'utf8'));
    const scheduled = (h: typeof stopped) =>
      (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    // what they claim: the first records its run and was terminated; the second opened the ledger, redid no start
    assert.ok(scheduled(stopped).includes('recordFwRun'));
    assert.ok(stopped.events?.some((e) => e.workflowExecutionTerminatedEventAttributes));
    assert.ok(scheduled(resumed).includes('openFwResume'));
    assert.ok(!scheduled(resumed).includes('fwCopyStart'));
    assert.ok(resumed.events?.some((e) => e.workflowExecutionCompletedEventAttributes));
    const workflowsPath = require.resolve('../workflows');
    await Worker.runReplayHistory({ workflowsPath }, stopped, workflowIdOf(stopped));
    await Worker.runReplayHistory({ workflowsPath }, resumed, 'fw-resumed');
  },
);
