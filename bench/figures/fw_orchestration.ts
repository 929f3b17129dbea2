/**
 * Orchestration overhead of a Frank-Wolfe run through the real stack (bench/fw_run.js: a `mergeflow worker`
 * child process, the local Temporal and S3 servers): the workflow's wall time against the wall time of its
 * iterations' work phases (the gradient fan-out over the targets, the oracle fan-out over the pool's shards, the
 * update), summed over the run. Everything else counts as overhead, as in the AdaMerging figure (orchestration.ts):
 * validating the inputs, the Task Arithmetic start, the workflow tasks between phases, writing the merged
 * model, evaluating and publishing. Goal (issue 8): at most 5 % of wall.
 *
 * FW-Hard at its defaults (10 iterations, 100 proxy rows per target, task-wise oracle) over the synthetic
 * fixture with the mini-8 suite's encoder, 8 candidates and 8 targets; --quick: the tests' tiny model, 4 of each,
 * 3 iterations of 8 rows.
 */
import { stackUnavailable } from '../harness/env';
import { fwRunChild } from '../harness/run_child';
import { overheadFigures } from '../harness/overhead';
import { Bench, figure, Figure } from '../harness/types';

interface FwRunSummary {
  iterations: number;
  wallSeconds: number;
  timings: Record<string, number>;
  split: { gradient: number; oracle: number; update: number; orchestration: number; wall: number; activities: number };
}

export const bench: Bench = {
  name: 'fw_orchestration',
  description:
    'FW-Hard through a worker, Temporal and S3 (suite full-size model, 8 candidates, 8 targets × 100 proxy rows, 10 iterations): workflow wall vs time in the iterations',
  unavailable: stackUnavailable,
  async run({ quick, log }): Promise<Figure[]> {
    const args = quick
      ? ['--tasks', '4', '--rows', '12', '--samples', '8', '--iterations', '3']
      : ['--mini8', '--tasks', '8', '--rows', '128', '--samples', '100', '--iterations', '10'];
    const r = await fwRunChild<FwRunSummary>(args);
    const wall = r.timings.total;
    const work = r.split.gradient + r.split.oracle + r.split.update;
    log(
      `${r.iterations} iterations: workflow ${wall.toFixed(2)} s; gradient ${r.split.gradient.toFixed(2)} s, oracle ` +
        `${r.split.oracle.toFixed(2)} s, update ${r.split.update.toFixed(2)} s, between phases ` +
        `${r.split.orchestration.toFixed(3)} s; activities' own seconds ${r.split.activities.toFixed(2)}; ` +
        `timings ${JSON.stringify(r.timings)}`,
    );
    const tag = `hard.task.${quick ? 'tiny.4x8.3it.quick' : 'mini8.8x100.10it'}`;
    return [
      ...overheadFigures(
        'orchestration.fw',
        tag,
        wall,
        work,
        "wall of the iterations' gradient, oracle and update phases (same run)",
      ),
      figure({
        name: `orchestration.fw.between_phases.${tag}`,
        value: r.split.orchestration,
        unit: 's',
        baseline: null,
        baseline_value: null,
        goal: null,
      }),
    ];
  },
};
