/**
 * One Frank-Wolfe run through the real stack (a `mergeflow worker` child process, Temporal, S3) on the synthetic
 * AdaMerging fixture: prints the workflow's timings and its split of the iterations' time (gradient, oracle,
 * update, the activities' own seconds), for the orchestration bench.
 *
 *   node dist/bench/fw_run.js [--mini8] [--tasks 8] [--rows 128] [--iterations 10] [--samples 100]
 *        [--variant hard|soft] [--oracle task|layer]
 *
 * --mini8 uses the mini-8 suite's encoder (as adamerging_run.js); otherwise the tests' tiny model.
 */
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { applyStackEnv } from '../infra/stack';
import { validateConfig } from '../core/config/load';
import type { FwResult, FwRunInput } from '../core/merge/frank_wolfe/run_types';
import type { FrankWolfeConfig } from '../core/config/schema';
import { TINY, writeAdaFixture } from '../core/synthetic_adamerging';
import { RECIPES } from '../core/suite/recipe';
import { temporalTarget } from '../workers/temporal_config';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

async function main(): Promise<void> {
  applyStackEnv();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const tag = `${Date.now().toString(36)}-${process.pid}`;
  const prefix = `s3://${process.env.MERGEFLOW_BUCKET ?? 'mergeflow'}/bench/fw-${tag}`;
  const queue = `bench-fw-${tag}`;
  const fx = await writeAdaFixture(`${prefix}/in`, {
    labeled: true,
    config: process.argv.includes('--mini8') ? RECIPES.full.model : TINY,
    rows: Number(arg('rows', '128')),
    tasks: Number(arg('tasks', '8')),
  });
  const config = validateConfig(
    {
      method: 'frank_wolfe',
      base: fx.pretrained,
      pool: fx.tasks.map((t) => ({ name: t.name, checkpoint: t.model })),
      targets: fx.tasks.map((t) => ({ name: t.name, head: t.head, proxy: t.data, data: t.data })),
      output: `${prefix}/out`,
      parameters: {
        variant: arg('variant', 'hard'),
        oracle: arg('oracle', 'task'),
        iterations: Number(arg('iterations', '10')),
        proxy_samples: Number(arg('samples', '100')),
      },
    },
    'bench',
  ) as FrankWolfeConfig;
  const cli = path.join(__dirname, '..', 'cli', 'main.js');
  const worker = spawn(process.execPath, [cli, 'worker'], {
    env: { ...process.env, MERGEFLOW_TASK_QUEUE: queue, MERGEFLOW_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const connection = await Connection.connect({ address: temporalTarget().address });
  try {
    const client = new Client({ connection, namespace: temporalTarget().namespace });
    const t0 = Date.now();
    const h = await client.workflow.start('frankWolfeRun', {
      taskQueue: queue,
      workflowId: `bench-fw-${tag}`,
      args: [{ config } as FwRunInput],
    });
    const r = (await h.result()) as FwResult;
    console.log(
      JSON.stringify(
        { iterations: r.iterations, wallSeconds: (Date.now() - t0) / 1000, timings: r.timings, split: r.split },
        null,
        2,
      ),
    );
  } finally {
    worker.kill('SIGTERM');
    await connection.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
