/**
 * Fault drill for Frank-Wolfe on its own stack (drills/stack.ts): an FW-Hard run (TA start, layer-wise oracle)
 * while its workers are SIGKILLed inside its gradient, oracle and update activities (seeded picks among the
 * activities running at the time), next to an uninterrupted run of the same config on another queue. The
 * interrupted run completes, its model's bytes equal the uninterrupted run's, and its output folder holds only
 * what the manifest lists (no object from a killed attempt under any name).
 *
 * Only activities whose successors are long activities are killed: a quick activity (copying θ0, publishing)
 * has no heartbeat, so a worker dying under it is noticed only after its 30-minute start-to-close timeout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { WorkflowHandle } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { FwResult } from '../core/merge/frank_wolfe/run_types';
import { readJson } from '../core/store';
import { writeAdaFixture, type AdaFixture } from '../core/synthetic_adamerging';
import { DrillStack, listKeys, objectSha256, resultThroughOutages, seeded, uniq, waitFor } from './stack';

const SEED = Number(process.env.MERGEFLOW_DRILL_SEED ?? 1);
const KILLS = 6;
const KILLABLE = ['fwGradient', 'fwOracleShard', 'fwUpdate'];
const WORKER_ENV = { MERGEFLOW_WORKER_ACTIVITIES: '1' };
const PARAMS = {
  variant: 'hard',
  oracle: 'layer',
  start: 'ta',
  iterations: 5,
  proxy_samples: 8,
  step_size: 0.5,
  seed: 2,
};

const stack = new DrillStack();
const root = `s3://mergeflow/drills/${uniq('fw')}`;
let fx: AdaFixture;

before(async () => {
  await stack.up();
  fx = await writeAdaFixture(`${root}/in`, { tasks: 4, labeled: true, rows: 12 });
});

after(async () => {
  await stack.down();
});

function start(label: string, queue: string): Promise<WorkflowHandle> {
  const config = validateConfig(
    {
      method: 'frank_wolfe',
      base: fx.pretrained,
      pool: fx.tasks.map((t) => ({ name: t.name, checkpoint: t.model })),
      targets: fx.tasks.slice(0, 2).map((t) => ({ name: t.name, head: t.head, proxy: t.data, data: t.data })),
      output: `${root}/${label}`,
      shards: 2,
      parameters: PARAMS,
    },
    'drill',
  );
  return stack.client!.workflow.start('frankWolfeRun', {
    taskQueue: queue,
    workflowId: uniq(`drill-fw-${label}`),
    args: [{ config, heartbeatTimeoutSeconds: 4 }],
  });
}

/** The output folder holds exactly the files its manifest lists, and the manifest. */
async function checkFolder(label: string, r: FwResult): Promise<void> {
  const manifest = (await readJson(r.manifestUri, (w) => new Error(w))) as { files: string[] };
  assert.deepEqual(
    await listKeys(`${root}/${label}/`),
    [...manifest.files, 'mergeflow.manifest.json'].sort(),
    `${label}: only the published files are in the output folder`,
  );
}

test(
  `drill: workers SIGKILLed inside FW gradient, oracle and update activities (seed ${SEED}); the same bytes`,
  { timeout: 300_000 },
  async (t) => {
    const rng = seeded(SEED);
    const plainQueue = uniq('drill-fw-plain');
    stack.worker(plainQueue, WORKER_ENV);
    const plain = await start('plain', plainQueue);

    const queue = uniq('drill-fw-kill');
    const live: ChildProcess[] = [stack.worker(queue, WORKER_ENV), stack.worker(queue, WORKER_ENV)];
    const h = await start('kill', queue);
    const kills: string[] = [];
    const perType = new Map<string, number>();
    const killedIds = new Set<string>();
    while (kills.length < KILLS) {
      const target = await waitFor(
        async () => {
          const d = await h.describe();
          if (d.status.name !== 'RUNNING')
            throw new Error(`the run ended (${d.status.name}) after ${kills.length} kills`);
          // each activity once, and no type more than its share: the kills spread over the phases and iterations
          const acts = (d.raw.pendingActivities ?? []).filter(
            (a) =>
              Number(a.state) === 2 &&
              KILLABLE.includes(a.activityType?.name ?? '') &&
              (perType.get(a.activityType!.name!) ?? 0) < KILLS / KILLABLE.length &&
              !killedIds.has(a.activityId ?? ''),
          );
          const a = acts[Math.floor(rng() * acts.length)];
          const w = a && live.find((c) => stack.identity(c) === a.lastWorkerIdentity);
          return w ? { a, w } : undefined;
        },
        120_000,
        `a running gradient, oracle or update activity (after ${kills.length} kills)`,
      );
      const gone = new Promise((r) => target.w.once('exit', r));
      target.w.kill('SIGKILL');
      await gone;
      const type = target.a.activityType!.name!;
      perType.set(type, (perType.get(type) ?? 0) + 1);
      killedIds.add(target.a.activityId ?? '');
      kills.push(`${type}#${target.a.activityId} attempt ${target.a.attempt}`);
      live[live.indexOf(target.w)] = stack.worker(queue, WORKER_ENV);
    }
    t.diagnostic(`killed during: ${kills.join(', ')}`);

    const r = await resultThroughOutages<FwResult>(h, 240_000);
    const p = await resultThroughOutages<FwResult>(plain, 240_000);
    assert.equal(r.iterations, PARAMS.iterations);
    assert.equal(r.output.sha256, p.output.sha256, 'the model equals the uninterrupted run');
    assert.equal(await objectSha256(r.output.uri), await objectSha256(p.output.uri), 'the stored bytes too');
    assert.deepEqual(r.objective, p.objective, 'the same objective history');
    await checkFolder('kill', r);
    await checkFolder('plain', p);
    const events = (await h.fetchHistory()).events ?? [];
    const retried = events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
    assert.ok(retried >= 1, 'killed activities were retried');
    assert.deepEqual([...perType.keys()].sort(), [...KILLABLE].sort(), 'kills inside each kind of activity');
    t.diagnostic(`${retried} retried attempts; objective ${JSON.stringify(r.objective)}`);
  },
);
