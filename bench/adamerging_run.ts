/**
 * One AdaMerging run through the real stack (a `mergeflow worker` child process, Temporal, S3) on the tiny
 * synthetic setup: prints wall time, seconds per optimiser step and the orchestration overhead (the share of
 * the epochs' wall time spent outside optimiser steps: scheduling, loading, checkpoints). With --record DIR it
 * writes every run of the chain's history as JSON (the replay test's fixtures).
 *
 *   node dist/bench/adamerging_run.js [--steps 200] [--steps-per-epoch 50] [--checkpoint-every 10]
 *        [--granularity layer|task] [--variant plain|ties] [--labeled] [--epochs-per-run N] [--record DIR]
 *        [--parallel none|tasks] [--workers 1] [--tasks 2]
 *        [--width 8] [--layers 1] [--image 8] [--patch 4] [--batch 4] [--rows 12]   (model and data size)
 *        [--mini8]   (the mini-8 suite's encoder: width 96, MLP 384, 2 layers, 4 heads, 28×28 images, patch 7)
 *
 * With --parallel tasks each step fans out one gradient activity per task over the --workers worker processes;
 * the output adds the per-task gradient seconds and the orchestration round trip per step.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyToFixture } from '../workers/history_fixture';
import { applyStackEnv } from '../infra/stack';
import { validateConfig } from '../core/config/load';
import type { AdaResult, AdaRunInput } from '../core/merge/adamerging/run_types';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { parseClipVisionConfig } from '../core/models/clip_vit';
import { temporalTarget } from '../workers/temporal_config';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const flag = (name: string) => process.argv.includes(`--${name}`);

/** parallel: tasks runs: mean seconds of a task-gradient activity (after the session load) and of a reduce. */
async function activitySeconds(client: Client, workflowId: string, first: string): Promise<Record<string, number>> {
  const sums: Record<string, { n: number; s: number }> = {};
  let runId: string | undefined = first;
  for (;;) {
    const hist: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    for (const e of hist.events ?? []) {
      // activity results, and local activity results (the parallel reduce) in their markers
      const p =
        e.activityTaskCompletedEventAttributes?.result?.payloads?.[0] ??
        e.markerRecordedEventAttributes?.details?.data?.payloads?.[0];
      if (!p) continue;
      const raw = defaultPayloadConverter.fromPayload<unknown>(p);
      // some activities return a plain string (a URI): only objects carry seconds
      if (typeof raw !== 'object' || raw === null) continue;
      const v = raw as Record<string, unknown>;
      const kind = 'gradUri' in v ? 'gradient' : 'lossPerTask' in v && !('resumedFrom' in v) ? 'reduce' : undefined;
      if (!kind || typeof v.seconds !== 'number') continue;
      sums[kind] ??= { n: 0, s: 0 };
      sums[kind].n++;
      sums[kind].s += v.seconds;
    }
    const events = hist.events ?? [];
    runId = events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    if (!runId) break;
  }
  return Object.fromEntries(Object.entries(sums).map(([k, { n, s }]) => [`${k}MsMean`, (s / n) * 1000]));
}

async function main(): Promise<void> {
  applyStackEnv();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const tag = `${Date.now().toString(36)}-${process.pid}`;
  const prefix = `s3://${process.env.MERGEFLOW_BUCKET ?? 'mergeflow'}/bench/adamerging-${tag}`;
  const queue = `bench-ada-${tag}`;
  const width = Number(arg('width', '8'));
  const mini8 = flag('mini8');
  const model = parseClipVisionConfig(
    mini8
      ? {
          hidden_size: 96,
          intermediate_size: 384,
          num_hidden_layers: 2,
          num_attention_heads: 4,
          image_size: 28,
          patch_size: 7,
          num_channels: 1,
          projection_dim: 64,
        }
      : {
          hidden_size: width,
          intermediate_size: Math.round(width * 1.5),
          num_hidden_layers: Number(arg('layers', '1')),
          num_attention_heads: 2,
          image_size: Number(arg('image', '8')),
          patch_size: Number(arg('patch', '4')),
          num_channels: 1,
          projection_dim: 4,
        },
    'bench',
  );
  const fx = await writeAdaFixture(`${prefix}/in`, {
    labeled: flag('labeled'),
    config: model,
    rows: Number(arg('rows', '12')),
    tasks: Number(arg('tasks', '2')),
  });
  const spe = arg('steps-per-epoch', '50');
  const config = validateConfig(
    {
      method: 'adamerging',
      base: fx.pretrained,
      tasks: fx.tasks,
      output: `${prefix}/out`,
      parameters: {
        granularity: arg('granularity', 'layer'),
        variant: arg('variant', 'plain'),
        steps: Number(arg('steps', '200')),
        steps_per_epoch: spe === 'auto' ? spe : Number(spe),
        parallel: arg('parallel', 'none'),
        checkpoint_every: Number(arg('checkpoint-every', '10')),
        batch_size: Number(arg('batch', '4')),
        lr: 0.02,
      },
    },
    'bench',
  );
  const cli = path.join(__dirname, '..', 'cli', 'main.js');
  const workers = Array.from({ length: Number(arg('workers', '1')) }, () =>
    spawn(process.execPath, [cli, 'worker'], {
      env: { ...process.env, MERGEFLOW_TASK_QUEUE: queue, MERGEFLOW_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const connection = await Connection.connect({ address: temporalTarget().address });
  try {
    const client = new Client({ connection, namespace: temporalTarget().namespace });
    const input = {
      config,
      epochsPerRun: Number(arg('epochs-per-run', '50')),
    } as AdaRunInput;
    const t0 = Date.now();
    const h = await client.workflow.start('adaMergingRun', {
      taskQueue: queue,
      workflowId: `bench-ada-${tag}`,
      args: [input],
    });
    const r = (await h.result()) as AdaResult;
    const wall = (Date.now() - t0) / 1000;
    const o = r.orchestration;
    const perActivity = await activitySeconds(client, h.workflowId, h.firstExecutionRunId);
    console.log(
      JSON.stringify(
        {
          steps: r.steps,
          epochs: r.epochs,
          stepsPerEpoch: config.method === 'adamerging' ? config.parameters.steps_per_epoch : undefined,
          wallSeconds: wall,
          msPerStep: (o.stepSeconds / r.steps) * 1000,
          epochWallSeconds: o.epochWallSeconds,
          stepSeconds: o.stepSeconds,
          checkpointSeconds: o.checkpointSeconds,
          loadSeconds: o.loadSeconds,
          schedulingSecondsPerEpoch: o.schedulingSeconds / r.epochs,
          orchestrationOfEpochs: o.overheadFraction,
          orchestrationOfRunWall: 1 - o.stepSeconds / wall,
          wallMsPerStepInEpochs: (o.epochWallSeconds / r.steps) * 1000,
          orchestrationMsPerStep: ((o.epochWallSeconds - o.stepSeconds) / r.steps) * 1000,
          ...perActivity,
          timings: r.timings,
          lossPerTask: r.lossPerTask,
          accuracy: r.accuracy,
          output: r.output.uri,
        },
        null,
        2,
      ),
    );
    const record = arg('record', '');
    if (record) {
      fs.mkdirSync(record, { recursive: true });
      let runId: string | undefined = h.firstExecutionRunId;
      for (let i = 0; runId; i++) {
        const hist: Awaited<ReturnType<typeof h.fetchHistory>> = await client.workflow
          .getHandle(h.workflowId, runId)
          .fetchHistory();
        const file = path.join(record, `adamerging-run-${i}.json`);
        fs.writeFileSync(file, historyToFixture(hist));
        console.log(`recorded ${file}`);
        const events = hist.events ?? [];
        const last = events[events.length - 1];
        runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
    }
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await connection.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
