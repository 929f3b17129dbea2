/**
 * `mergeflow demo`: the whole path on a small built-in example. Starts the local stack if needed and a worker
 * in this process, writes a few small checkpoints to S3, runs Task Arithmetic and TIES through Temporal,
 * and prints where the outputs are.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig } from '../../core/config/load';
import type { MergeResult, MergeRunInput } from '../../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../../core/synthetic';
import { applyStackEnv, stackHome, stackStatus, stackUp } from '../../infra/stack';
import { createWorker } from '../../workers/worker';
import { setLogLevel } from '../../workers/logger';
import { connectClient } from '../client';
import { follow } from '../follow';
import { resultLines } from '../format';
import { newRunId } from '../run_id';

export function demoCommand(): Command {
  return new Command('demo')
    .description('run Task Arithmetic and TIES end to end on built-in checkpoints (starts the stack if needed)')
    .option('--no-stack', 'use TEMPORAL_ADDRESS / AWS_ENDPOINT_URL_S3 as they are; do not start the local stack')
    .action(async (opts: { stack: boolean }) => {
      if (opts.stack) {
        const s = await stackStatus({ quiet: true });
        if (s.services.temporal.state !== 'running' || s.services.s3.state !== 'running') await stackUp();
        applyStackEnv();
      }
      const bucket = process.env.MERGEFLOW_BUCKET ?? 'mergeflow';
      const prefix = `s3://${bucket}/demo/checkpoints`;
      console.log(`writing demo checkpoints to ${prefix}/`);
      const ck = await writeSyntheticCheckpoints(prefix, { seed: 7, models: 4, dim: 128, layers: 6 });
      const dir = path.join(stackHome(), 'demo');
      fs.mkdirSync(dir, { recursive: true });
      const runs: { method: string; parameters: Record<string, unknown> }[] = [
        { method: 'task_arithmetic', parameters: { scaling: 0.3 } },
        { method: 'ties', parameters: { scaling: 0.3, keep: 0.2 } },
      ];
      const { client, target } = await connectClient();
      if (!process.env.MERGEFLOW_LOG_LEVEL) setLogLevel('warn');
      const { worker, connection } = await createWorker();
      try {
        await worker.runUntil(async () => {
          for (const r of runs) {
            const file = path.join(dir, `${r.method}.yaml`);
            fs.writeFileSync(
              file,
              stringify({
                method: r.method,
                base: ck.base,
                models: ck.models,
                parameters: r.parameters,
                output: `s3://${bucket}/demo/merged/${r.method}.safetensors`,
              }),
            );
            const config = loadConfig(file);
            const runId = newRunId(`demo-${r.method}`);
            console.log(`\n${r.method}: config ${file}`);
            const handle = await client.workflow.start('dataFreeMerge', {
              taskQueue: target.taskQueue,
              workflowId: runId,
              args: [{ config } satisfies MergeRunInput],
            });
            const result = await follow<MergeResult>(handle, { bar: process.stderr.isTTY === true });
            console.log(resultLines(result).join('\n'));
          }
        });
      } finally {
        await connection.close();
      }
      console.log(
        `\ndone: merged checkpoints are under s3://${bucket}/demo/merged/ (each with a .manifest.json beside it)`,
      );
    });
}
