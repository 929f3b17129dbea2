/**
 * One AdaMerging run through the real stack (a `mergeflow worker` child process, Temporal, S3) on the tiny
 * synthetic setup: prints wall time, seconds per optimiser step and the orchestration overhead (the share of
 * the epochs' wall time spent outside optimiser steps: scheduling, loading, checkpoints). With --record DIR it
 * writes every run of the chain's history as JSON (the replay test's fixtures).
 *
 *   node dist/bench/adamerging_run.js [--steps 200] [--steps-per-epoch 50] [--checkpoint-every 10]
 *        [--granularity layer|task] [--variant plain|ties] [--labeled] [--epochs-per-run N] [--record DIR]
 *        [--width 8] [--layers 1] [--image 8] [--patch 4] [--batch 4] [--rows 12] [--tasks 2]   (model and data)
 *
 * bench/figures/orchestration.ts runs the same through runAdaMergingThroughStack. The clock starts once the
 * worker polls the queue, so the worker's start-up is not counted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { historyToFixture } from '../workers/history_fixture';
import { applyStackEnv } from '../infra/stack';
import { validateConfig } from '../core/config/load';
import type { AdaResult, AdaRunInput } from '../core/merge/adamerging/run_types';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { ClipVisionConfig, parseClipVisionConfig } from '../core/models/clip_vit';
import { temporalTarget } from '../workers/temporal_config';

export interface AdaBenchOptions {
  steps: number;
  stepsPerEpoch: number;
  checkpointEvery: number;
  granularity: 'layer' | 'task';
  variant: 'plain' | 'ties';
  labeled: boolean;
  epochsPerRun: number;
  /** The synthetic model, and its number of tasks. */
  model: ClipVisionConfig;
  tasks: number;
  batch: number;
  rows: number;
  /** Write the chain's histories as replay fixtures into this folder. */
  record?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface AdaBenchResult {
  steps: number;
  epochs: number;
  stepsPerEpoch: number;
  /** From the workflow's start to its result, with a worker already polling. */
  wallSeconds: number;
  msPerStep: number;
  epochWallSeconds: number;
  stepSeconds: number;
  checkpointSeconds: number;
  loadSeconds: number;
  schedulingSecondsPerEpoch: number;
  orchestrationOfEpochs: number;
  orchestrationOfRunWall: number;
  timings: AdaResult['timings'];
  lossPerTask: AdaResult['lossPerTask'];
  accuracy: AdaResult['accuracy'];
  output: string;
}

/** Wait until some worker polls `queue` for workflow and activity tasks (its start is not the run's time). */
async function waitForPollers(
  connection: Connection,
  namespace: string,
  queue: string,
  worker: ChildProcess,
): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    if (worker.exitCode !== null) throw new Error(`the worker exited (${worker.exitCode}) before polling ${queue}`);
    const counts = await Promise.all(
      [
        temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      ].map(
        async (taskQueueType) =>
          (await connection.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType }))
            .pollers?.length ?? 0,
      ),
    );
    if (counts.every((c) => c > 0)) return;
    if (Date.now() > end) throw new Error(`no worker polled ${queue} within 120 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One AdaMerging run through a `mergeflow worker` child process, Temporal and S3, on a synthetic setup. */
export async function runAdaMergingThroughStack(o: AdaBenchOptions): Promise<AdaBenchResult> {
  applyStackEnv();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = o.log ?? (() => undefined);
  const tag = `${Date.now().toString(36)}-${process.pid}`;
  const prefix = `s3://${process.env.MERGEFLOW_BUCKET ?? 'mergeflow'}/bench/adamerging-${tag}`;
  const queue = `bench-ada-${tag}`;
  log(`writing the synthetic setup (${o.tasks} tasks) under ${prefix}`);
  const fx = await writeAdaFixture(`${prefix}/in`, {
    labeled: o.labeled,
    config: o.model,
    tasks: o.tasks,
    rows: o.rows,
  });
  const config = validateConfig(
    {
      method: 'adamerging',
      base: fx.pretrained,
      tasks: fx.tasks,
      output: `${prefix}/out`,
      parameters: {
        granularity: o.granularity,
        variant: o.variant,
        steps: o.steps,
        steps_per_epoch: o.stepsPerEpoch,
        checkpoint_every: o.checkpointEvery,
        batch_size: o.batch,
        lr: 0.02,
      },
    },
    'bench',
  );
  const cli = path.join(__dirname, '..', 'cli', 'main.js');
  const worker = spawn(process.execPath, [cli, 'worker'], {
    env: { ...process.env, MERGEFLOW_TASK_QUEUE: queue, MERGEFLOW_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const connection = await Connection.connect({ address: temporalTarget().address });
  try {
    const namespace = temporalTarget().namespace;
    const client = new Client({ connection, namespace });
    await waitForPollers(connection, namespace, queue, worker);
    log(`worker polling ${queue}; starting ${o.steps} steps`);
    const input = { config, epochsPerRun: o.epochsPerRun } as AdaRunInput;
    const t0 = Date.now();
    const h = await client.workflow.start('adaMergingRun', {
      taskQueue: queue,
      workflowId: `bench-ada-${tag}`,
      args: [input],
    });
    const r = (await h.result()) as AdaResult;
    const wall = (Date.now() - t0) / 1000;
    const oc = r.orchestration;
    if (o.record) {
      fs.mkdirSync(o.record, { recursive: true });
      let runId: string | undefined = h.firstExecutionRunId;
      for (let i = 0; runId; i++) {
        const hist: Awaited<ReturnType<typeof h.fetchHistory>> = await client.workflow
          .getHandle(h.workflowId, runId)
          .fetchHistory();
        const file = path.join(o.record, `adamerging-run-${i}.json`);
        fs.writeFileSync(file, historyToFixture(hist));
        log(`recorded ${file}`);
        const events = hist.events ?? [];
        const last = events[events.length - 1];
        runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
    }
    return {
      steps: r.steps,
      epochs: r.epochs,
      stepsPerEpoch: o.stepsPerEpoch,
      wallSeconds: wall,
      msPerStep: (oc.stepSeconds / r.steps) * 1000,
      epochWallSeconds: oc.epochWallSeconds,
      stepSeconds: oc.stepSeconds,
      checkpointSeconds: oc.checkpointSeconds,
      loadSeconds: oc.loadSeconds,
      schedulingSecondsPerEpoch: oc.schedulingSeconds / r.epochs,
      orchestrationOfEpochs: oc.overheadFraction,
      orchestrationOfRunWall: 1 - oc.stepSeconds / wall,
      timings: r.timings,
      lossPerTask: r.lossPerTask,
      accuracy: r.accuracy,
      output: r.output.uri,
    };
  } finally {
    if (worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((res) => worker.once('exit', res));
      worker.kill('SIGTERM');
      const t = setTimeout(() => worker.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    await connection.close();
  }
}

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const flag = (name: string) => process.argv.includes(`--${name}`);

async function main(): Promise<void> {
  const width = Number(arg('width', '8'));
  const model = parseClipVisionConfig(
    {
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
  const r = await runAdaMergingThroughStack({
    steps: Number(arg('steps', '200')),
    stepsPerEpoch: Number(arg('steps-per-epoch', '50')),
    checkpointEvery: Number(arg('checkpoint-every', '10')),
    granularity: arg('granularity', 'layer') as 'layer' | 'task',
    variant: arg('variant', 'plain') as 'plain' | 'ties',
    labeled: flag('labeled'),
    epochsPerRun: Number(arg('epochs-per-run', '50')),
    model,
    tasks: Number(arg('tasks', '2')),
    batch: Number(arg('batch', '4')),
    rows: Number(arg('rows', '12')),
    record: arg('record', '') || undefined,
    log: (line) => console.log(line),
  });
  console.log(JSON.stringify(r, null, 2));
}

if (require.main === module) {
  main()
    .then(() => process.exit())
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
