/** `mergeflow run CONFIG`: validate the config here, start the merge workflow, optionally wait for it. */
import { Command } from 'commander';
import { loadConfig } from '../../core/config/load';
import type { AdaResult } from '../../core/merge/adamerging/run_types';
import type { FwResult } from '../../core/merge/frank_wolfe/run_types';
import type { MergeResult } from '../../core/pipeline/run_types';
import { isDataFree, type MergeConfig } from '../../core/config/schema';
import { connectClient } from '../client';
import { follow } from '../follow';
import { printJson, resultLines } from '../format';
import { newRunId } from '../run_id';
import { startRun } from '../start_run';
import { numberArg } from '../args';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** AdaMerging's and Frank-Wolfe's extra outputs for --json (absent for data-free runs). */
function adaFields(r: MergeResult): Record<string, unknown> {
  const f = r as Partial<FwResult>;
  if (f.selections)
    return {
      iterations: f.iterations,
      variant: f.variant,
      oracle: f.oracle,
      objective: f.objective,
      selections: f.selections,
      objectivePng: f.objectivePng,
      selectionPng: f.selectionPng,
      accuracy: f.accuracy,
      split: f.split,
    };
  const a = r as Partial<AdaResult>;
  if (!a.lambdaJson) return {};
  return {
    steps: a.steps,
    lambda: a.lambdaJson,
    lambdaSafetensors: a.lambdaSafetensors,
    losses: a.losses,
    report: a.report,
    state: a.stateUri,
    accuracy: a.accuracy,
    orchestration: a.orchestration,
  };
}

/**
 * Plan the run here first, from headers only (the worker plans again): missing objects, corrupt headers and
 * models that do not match the base fail now, with one line and before any workflow exists.
 */
async function preflight(config: MergeConfig, runId: string): Promise<void> {
  if (isDataFree(config)) {
    const { planMerge } = await import('../../core/pipeline/plan');
    await planMerge(config, runId);
  } else if (config.method === 'frank_wolfe') {
    const { planFrankWolfe } = await import('../../core/merge/frank_wolfe/plan');
    await planFrankWolfe(config, runId);
  } else {
    const { planAdaMerging } = await import('../../core/merge/adamerging/validate');
    await planAdaMerging(config, runId);
  }
}

export function runCommand(): Command {
  return new Command('run')
    .description('start a merge from a YAML config (validated before anything starts)')
    .argument('<config>', 'merge config file (YAML)')
    .option('-s, --set <path=value>', 'override a config field, e.g. parameters.scaling=0.4 (repeatable)', collect, [])
    .option('-w, --wait', 'follow the run until it ends and print the result')
    .option('--json', 'print one JSON object (run id, status, output, sha256, timings)')
    .option('--id <workflowId>', 'use this run id instead of a generated one (starting an id that exists reuses it)')
    .option(
      '--heartbeat-timeout <seconds>',
      'seconds without a heartbeat before a shard is retried on another worker',
      numberArg('--heartbeat-timeout', { min: 1, max: 86_400, unit: 'seconds' }),
      60,
    )
    .action(
      async (
        file: string,
        opts: { set: string[]; wait?: boolean; json?: boolean; id?: string; heartbeatTimeout: number },
      ) => {
        const config = loadConfig(file, opts.set);
        const runId = opts.id ?? newRunId(config.name ?? config.method);
        await preflight(config, runId);
        const { client, target } = await connectClient();
        const heartbeatTimeoutSeconds = opts.heartbeatTimeout;
        const start = {
          taskQueue: target.taskQueue,
          workflowId: runId,
          workflowIdConflictPolicy: 'USE_EXISTING' as const,
        };
        const handle = await startRun(client, config, { ...start, heartbeatTimeoutSeconds });
        if (!opts.wait) {
          if (opts.json) printJson({ runId, status: 'running', output: config.output });
          else
            console.log(`started ${runId}\n  watch:  mergeflow watch ${runId}\n  result: mergeflow results ${runId}`);
          return;
        }
        const started = Date.now();
        try {
          const result = await follow<MergeResult>(handle, {
            bar: !opts.json && process.stderr.isTTY === true,
            quiet: opts.json,
          });
          if (opts.json)
            printJson({
              runId,
              status: 'completed',
              output: result.output.uri,
              sha256: result.output.sha256,
              bytes: result.output.bytes,
              ...(result.outputFiles ? { files: result.outputFiles } : {}),
              manifest: result.manifestUri,
              timings: result.timings,
              wallSeconds: (Date.now() - started) / 1000,
              ...adaFields(result),
            });
          else console.log(resultLines(result).join('\n'));
        } catch (e) {
          if (opts.json) {
            const { rootMessage } = await import('../errors');
            printJson({ runId, status: 'failed', error: rootMessage(e) });
            process.exitCode = 1;
            return;
          }
          throw e;
        }
      },
    );
}
