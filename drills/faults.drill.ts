/**
 * Fault drills (issue 10 §4) on their own stack (drills/stack.ts): a TIES merge of synthetic checkpoints in S3,
 * output to S3, through Temporal, while workers are SIGKILLed at random points (seeded, at least 10 kills), while
 * the Temporal server and the S3 server are stopped and restarted, and while a worker is stopped with SIGTERM.
 * Each time the run completes, its output bytes equal an uninterrupted in-process run's, and the output folder
 * holds only the output and its manifest (no part, temp or half-written object under any name).
 *
 * Run with `npm run test:drills` (builds first). MERGEFLOW_DRILL_SEED changes the kill points.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import type { MergeProgress, MergeResult } from '../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import {
  DrillStack,
  listKeys,
  objectSha256,
  openUploads,
  resultThroughOutages,
  seeded,
  sleep,
  uniq,
  waitFor,
} from './stack';

const SEED = Number(process.env.MERGEFLOW_DRILL_SEED ?? 1);
const KILLS = 10;
/** Data-free workers need no TensorFlow: the cpu backend starts fastest. */
const WORKER_ENV = { MERGEFLOW_TF_BACKEND: 'cpu', MERGEFLOW_WORKER_ACTIVITIES: '1' };

const stack = new DrillStack();
const root = `s3://mergeflow/drills/${uniq('run')}`;
let inputs: Awaited<ReturnType<typeof writeSyntheticCheckpoints>>;
/** The uninterrupted run's output: its content sha256, and the sha256 of its part list (what results report). */
let referenceSha = '';
let referencePartsSha = '';

function config(output: string) {
  return validateConfig(
    {
      method: 'ties',
      base: inputs.base,
      models: inputs.models,
      parameters: { keep: 0.2, scaling: 0.3 },
      output,
      shards: 4,
    },
    'drill',
  );
}

before(async () => {
  await stack.up();
  // large enough that a run outlasts ten kills with the streamed kernels (~60 MB per input)
  inputs = await writeSyntheticCheckpoints(`${root}/in`, { seed: 3, models: 3, dim: 1024, layers: 16 });
  const ref = await runLocalMerge(config(`${root}/reference/ties.safetensors`));
  referencePartsSha = ref.output.sha256;
  referenceSha = await objectSha256(ref.output.uri);
});

after(async () => {
  await stack.down();
});

/** A TIES run; heartbeats time out after `heartbeatSeconds` (short: a killed worker is noticed soon). */
function start(label: string, queue: string, heartbeatSeconds = 3): Promise<WorkflowHandle> {
  return stack.client!.workflow.start('dataFreeMerge', {
    taskQueue: queue,
    workflowId: uniq(`drill-${label}`),
    args: [{ config: config(`${root}/${label}/ties.safetensors`), heartbeatTimeoutSeconds: heartbeatSeconds }],
  });
}

type Pending = temporal.api.workflow.v1.IPendingActivityInfo;

/** Activities a worker is running now and has heartbeated from (so it is inside its work). */
async function running(h: WorkflowHandle): Promise<Pending[]> {
  const d = await h.describe();
  if (d.status.name !== 'RUNNING') throw new Error(`the run ended (${d.status.name}) before the drill was done`);
  return (d.raw.pendingActivities ?? []).filter((a) => Number(a.state) === 2 && a.lastHeartbeatTime);
}

/** The run's output equals the reference byte for byte, and nothing but it and its manifest is left. */
async function checkOutcome(t: { diagnostic(m: string): void }, label: string, r: MergeResult): Promise<void> {
  assert.equal(r.output.sha256, referencePartsSha, 'the output (its part list) equals the uninterrupted run');
  assert.equal(await objectSha256(r.output.uri), referenceSha, 'the stored object equals the uninterrupted run');
  const keys = await listKeys(`${root}/${label}/`);
  assert.deepEqual(
    keys,
    [r.output.uri, r.manifestUri].map((u) => u.slice(`${root}/${label}/`.length)).sort(),
    'only the output and its manifest are left in the output folder',
  );
  const uploads = await openUploads(`${root}/${label}/`);
  t.diagnostic(`multipart uploads left open by killed attempts: ${uploads.length}`);
}

/** How often each activity was started, from the run's history. */
async function attempts(h: WorkflowHandle): Promise<number[]> {
  const events = (await h.fetchHistory()).events ?? [];
  return events
    .filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
}

test(
  `drill: ${KILLS} workers SIGKILLed at random points (seed ${SEED}); the run completes with the same bytes`,
  { timeout: 480_000 },
  async (t) => {
    const rng = seeded(SEED);
    const queue = uniq('drill-kill');
    const live: ChildProcess[] = [stack.worker(queue, WORKER_ENV), stack.worker(queue, WORKER_ENV)];
    const h = await start('kill', queue);
    const kills: string[] = [];
    while (kills.length < KILLS) {
      // an activity inside its work, on one of our workers, with retries to spare (the policy allows 8 attempts)
      const target = await waitFor(
        async () => {
          const acts = (await running(h)).filter((a) => (a.attempt ?? 1) < 5);
          const a = acts[Math.floor(rng() * acts.length)];
          const w = a && live.find((c) => stack.identity(c) === a.lastWorkerIdentity);
          return w ? { a, w } : undefined;
        },
        120_000,
        `a running activity to interrupt (after ${kills.length} kills)`,
      );
      await sleep(Math.floor(rng() * 1500)); // a random point inside (or just after) that activity
      const gone = new Promise((r) => target.w.once('exit', r));
      target.w.kill('SIGKILL');
      await gone;
      kills.push(`${target.a.activityType?.name}#${target.a.activityId} attempt ${target.a.attempt}`);
      live[live.indexOf(target.w)] = stack.worker(queue, WORKER_ENV);
    }
    t.diagnostic(`killed during: ${kills.join(', ')}`);
    const r = await resultThroughOutages<MergeResult>(h, 300_000);
    await checkOutcome(t, 'kill', r);
    assert.ok(
      (await attempts(h)).some((a) => a > 1),
      'killed activities were retried',
    );
  },
);

test(
  'drill: the Temporal server stopped and restarted mid-run (same database file); the run completes',
  { timeout: 300_000 },
  async (t) => {
    const queue = uniq('drill-temporal');
    for (let i = 0; i < 2; i++) stack.worker(queue, WORKER_ENV);
    const h = await start('temporal', queue);
    const seen = await waitFor(
      async () => {
        const p = await h.query<MergeProgress>('progress');
        return p.done >= 2 && (await running(h)).length > 0 ? p : undefined;
      },
      120_000,
      'the run to be inside its shard passes',
    );
    await stack.stop('temporal');
    await sleep(3000); // activities go on, their heartbeats and results find no server
    await stack.restart();
    t.diagnostic(`Temporal stopped during ${seen.phase} (${seen.done}/${seen.total}) for 3 s`);
    const r = await resultThroughOutages<MergeResult>(h, 240_000);
    await checkOutcome(t, 'temporal', r);
  },
);

test(
  'drill: the S3 server stopped and restarted mid-transfer; transfers retry and the run completes',
  { timeout: 300_000 },
  async (t) => {
    const queue = uniq('drill-s3');
    for (let i = 0; i < 2; i++) stack.worker(queue, WORKER_ENV);
    const h = await start('s3', queue);
    const seen = await waitFor(
      async () => {
        const acts = await running(h);
        return acts.some((a) => /Shard$/.test(a.activityType?.name ?? '')) ? acts : undefined;
      },
      120_000,
      'a shard activity reading and writing S3',
    );
    await stack.stop('s3');
    await sleep(4000);
    await stack.restart();
    t.diagnostic(`S3 stopped for 4 s during ${seen.map((a) => a.activityType?.name).join(', ')}`);
    const r = await resultThroughOutages<MergeResult>(h, 240_000);
    await checkOutcome(t, 's3', r);
    assert.ok(
      (await attempts(h)).some((a) => a > 1),
      'the transfers cut off by the stop were retried',
    );
  },
);

test(
  'drill: SIGTERM lets the worker finish its current unit within the grace time, then exit 0',
  { timeout: 300_000 },
  async (t) => {
    const queue = uniq('drill-term');
    const first = stack.worker(queue, { ...WORKER_ENV, MERGEFLOW_SHUTDOWN_GRACE: '120s' });
    // nothing is killed here: a long heartbeat timeout keeps a slow step on a loaded machine from looking like one
    const h = await start('term', queue, 60);
    const held = await waitFor(
      async () => (await running(h)).find((a) => /Shard$/.test(a.activityType?.name ?? '')),
      120_000,
      'a shard activity on the worker',
    );
    const exit = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    first.kill('SIGTERM');
    const code = await exit;
    assert.equal(code, 0, 'the worker exits cleanly after SIGTERM');
    // the unit it held when the signal came completed in that same attempt, on that worker
    const events = (await h.fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === held.activityId);
    assert.ok(scheduled, 'the held activity is in the history');
    const done = events.find(
      (e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled!.eventId),
    );
    assert.ok(done, `${held.activityType?.name}#${held.activityId} completed before the worker exited`);
    const startedId = Number(done!.activityTaskCompletedEventAttributes!.startedEventId);
    const started = events.find((e) => Number(e.eventId) === startedId)!.activityTaskStartedEventAttributes!;
    assert.equal(started.identity, stack.identity(first));
    assert.equal(started.attempt ?? 1, held.attempt ?? 1, 'no retry: the unit was finished, not abandoned');
    t.diagnostic(`SIGTERM during ${held.activityType?.name}#${held.activityId}: finished it, exited 0`);
    stack.worker(queue, WORKER_ENV);
    const r = await resultThroughOutages<MergeResult>(h, 240_000);
    await checkOutcome(t, 'term', r);
    assert.ok(
      (await attempts(h)).every((a) => a === 1),
      'no activity of the run needed a retry',
    );
  },
);
