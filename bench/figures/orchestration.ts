/**
 * Orchestration overhead of an AdaMerging run through the real stack (bench/adamerging_run.js: a `mergeflow
 * worker` child process, the local Temporal and S3 servers): the workflow's wall time against the time spent
 * inside optimiser steps, summed over the run. Everything else (planning, scheduling epochs, loading θ0 and the task vectors into the
 * worker, checkpoints, the final merge and publishing) is the overhead. Goal (issue 8): at most 5 % of wall.
 *
 * The setup is synthetic (core/synthetic_adamerging) with the mini-8 suite's full-size encoder, 8 tasks and
 * batches of 16, at the method's defaults (500 steps, `steps_per_epoch: auto`, a checkpoint every 10 steps);
 * --quick uses the tests' tiny model at 20 steps in epochs of 10 (whose steps are so short that the overhead
 * dominates).
 */
import { stackUnavailable } from '../harness/env';
import { overheadFigures } from '../harness/overhead';
import { Bench, figure, Figure } from '../harness/types';
import { adamergingRunChild } from '../harness/run_child';

/** What bench/adamerging_run.ts prints (the fields used here). */
interface RunSummary {
  steps: number;
  epochs: number;
  wallSeconds: number;
  msPerStep: number;
  stepSeconds: number;
  checkpointSeconds: number;
  loadSeconds: number;
  schedulingSecondsPerEpoch: number;
  orchestrationOfEpochs: number;
  timings: Record<string, number>;
}

async function adamergingRun(args: string[], log: (line: string) => void): Promise<RunSummary> {
  const r = await adamergingRunChild<RunSummary>(args);
  log(`adamerging_run ${args.join(' ')}: done`);
  return r;
}

export const bench: Bench = {
  name: 'orchestration',
  description:
    'AdaMerging through a worker, Temporal and S3 (suite full-size model, 8 tasks × 16, the default 500 steps in auto-sized epochs): workflow wall vs time inside the steps',
  unavailable: stackUnavailable,
  async run({ quick, log }): Promise<Figure[]> {
    const o = quick
      ? { tasks: 2, steps: 20, stepsPerEpoch: 10, batch: 4, rows: 12, model: [] as string[] }
      : { tasks: 8, steps: 500, stepsPerEpoch: 'auto', batch: 16, rows: 32, model: ['--mini8'] };
    const r = await adamergingRun(
      [
        ...o.model,
        ...['--tasks', o.tasks, '--steps', o.steps, '--steps-per-epoch', o.stepsPerEpoch, '--checkpoint-every', 10],
        ...['--batch', o.batch, '--rows', o.rows, '--granularity', 'layer'],
      ].map(String),
      log,
    );
    // The workflow's own clock (from its first task to its result): the worker's start-up is not in it.
    const wall = r.timings.total;
    log(
      `${r.steps} steps in ${r.epochs} epochs: ${r.msPerStep.toFixed(1)} ms/step, workflow ${wall.toFixed(2)} s (client wall ${r.wallSeconds.toFixed(2)} s), ` +
        `in steps ${r.stepSeconds.toFixed(2)} s, checkpoints ${r.checkpointSeconds.toFixed(2)} s, load ${r.loadSeconds.toFixed(2)} s, ` +
        `scheduling ${r.schedulingSecondsPerEpoch.toFixed(3)} s/epoch; activities: ${JSON.stringify(r.timings)}`,
    );
    const tag = `layer.${o.tasks}x${o.batch}.${o.steps}steps${quick ? '.quick' : ''}`;
    return [
      ...overheadFigures(
        'orchestration.adamerging',
        tag,
        wall,
        r.stepSeconds,
        'sum of the time inside optimiser steps (same run)',
      ),
      figure({
        name: `orchestration.adamerging.share_of_epochs.${tag}`,
        value: 100 * r.orchestrationOfEpochs,
        unit: '%',
        baseline: null,
        baseline_value: null,
        goal: null,
      }),
    ];
  },
};
