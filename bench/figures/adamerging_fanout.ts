/**
 * AdaMerging with `parallel: tasks` (one gradient activity per task each step) on 1 and on 2 worker
 * processes, through the local Temporal and S3 servers (bench/adamerging_run.js starts the workers). Figure:
 * wall seconds per step inside the epochs with 2 workers; baseline: the same with 1 worker. Goal (issue 8):
 * speed-up ≥ 1.6×. The sequential mode (`parallel: none`, one worker) is reported for information.
 * Full runs use the mini-8 suite's encoder with 8 tasks × 16 images; --quick the tiny model with 4 tasks.
 * On a machine with fewer than 2 free cores the two workers share them and the goal cannot be met.
 */
import { stackUnavailable } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';
import { adamergingRunChild } from '../harness/run_child';

/** The fields of bench/adamerging_run.ts's JSON summary used here. */
interface RunSummary {
  steps: number;
  msPerStep: number;
  wallMsPerStepInEpochs: number;
  gradientMsMean?: number;
}

async function adamergingRun(args: string[], log: (line: string) => void): Promise<RunSummary> {
  const r = await adamergingRunChild<RunSummary>(args);
  log(
    `adamerging_run ${args.join(' ')}: ${r.wallMsPerStepInEpochs.toFixed(1)} ms/step wall, ` +
      `${r.msPerStep.toFixed(1)} ms/step in steps${r.gradientMsMean ? `, gradient activity ${r.gradientMsMean.toFixed(1)} ms` : ''}`,
  );
  return r;
}

const SPEEDUP = 1.6;

export const bench: Bench = {
  name: 'adamerging_fanout',
  description: 'AdaMerging parallel: tasks on 1 vs 2 workers through Temporal and S3 (s/step), and the sequential mode',
  unavailable: stackUnavailable,
  async run({ quick, log }): Promise<Figure[]> {
    const o = quick
      ? { tasks: 4, steps: 10, batch: 4, rows: 12, model: [] as string[] }
      : { tasks: 8, steps: 30, batch: 16, rows: 32, model: ['--mini8'] };
    const common = [
      ...o.model,
      ...['--tasks', o.tasks, '--steps', o.steps, '--steps-per-epoch', o.steps, '--checkpoint-every', o.steps],
      ...['--batch', o.batch, '--rows', o.rows, '--granularity', 'layer'],
    ].map(String);
    const seq = await adamergingRun([...common, '--parallel', 'none', '--workers', '1'], log);
    const one = await adamergingRun([...common, '--parallel', 'tasks', '--workers', '1'], log);
    const two = await adamergingRun([...common, '--parallel', 'tasks', '--workers', '2'], log);
    const tag = `layer.${o.tasks}x${o.batch}.${o.steps}steps${quick ? '.quick' : ''}`;
    const s = (r: RunSummary) => r.wallMsPerStepInEpochs / 1000;
    return [
      figure({
        name: `adamerging_fanout.tasks.2workers.${tag}`,
        value: s(two),
        unit: 's/step',
        baseline: 'parallel: tasks on 1 worker (same setup, same run)',
        baseline_value: s(one),
        goal: `speed-up >= ${SPEEDUP}x (ratio <= ${(1 / SPEEDUP).toFixed(3)})`,
        check: (_v, ratio) => ratio !== null && ratio <= 1 / SPEEDUP,
      }),
      figure({
        name: `adamerging_fanout.sequential.1worker.${tag}`,
        value: s(seq),
        unit: 's/step',
        baseline: null,
        baseline_value: null,
        goal: null,
      }),
    ];
  },
};
