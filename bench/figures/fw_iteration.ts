/**
 * One FW-Hard iteration (task-wise oracle, cross-entropy on a labeled proxy set per target, TA local merge)
 * run in this process by runFrankWolfeLocal, on each installed TensorFlow.js backend. No script times an FW
 * iteration, so this bench does: the seconds each iteration reports (gradient at θt, the oracle streaming the
 * pool, the update), not the TA start; the first iteration is a warm-up and is left out. The pool is the synthetic AdaMerging fixture
 * (core/synthetic_adamerging) written to the scratch folder: the mini-8 suite's full-size encoder with
 * 8 candidates and 8 targets of 16 proxy images, or with --quick the tests' tiny model with 4 of each.
 * Baseline: the tensorflow backend when installed, else wasm.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFrankWolfeLocal } from '../../core/merge/frank_wolfe/local_run';
import { TINY, writeAdaFixture } from '../../core/synthetic_adamerging';
import { RECIPES } from '../../core/suite/recipe';
import { backendDevice, initBackend, installedBackends } from '../../core/tensor/backend';
import { median } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';

export const bench: Bench = {
  name: 'fw_iteration',
  description: 'one FW-Hard iteration (task-wise, cross-entropy proxy) in process per tfjs backend (s/iteration)',
  async run({ dir, quick, log }): Promise<Figure[]> {
    const o = quick
      ? { config: TINY, tasks: 4, rows: 12, samples: 8, iterations: 3, model: 'tiny' }
      : { config: RECIPES.full.model, tasks: 8, rows: 32, samples: 16, iterations: 4, model: 'mini8' };
    const fx = await writeAdaFixture(pathToFileURL(path.join(dir, 'fixture')).href, {
      config: o.config,
      tasks: o.tasks,
      rows: o.rows,
      labeled: true,
    });
    const seconds: Record<string, number[]> = {};
    for (const b of installedBackends()) {
      const got = await initBackend(b);
      if (got !== b) throw new Error(`backend '${b}' did not start (got '${got}')`);
      const times: number[] = [];
      await runFrankWolfeLocal({
        pretrained: fx.pretrained,
        pool: fx.tasks.map((t) => ({ name: t.name, model: t.model })),
        targets: fx.tasks.map((t) => ({ name: t.name, head: t.head, proxy: t.data })),
        workDir: pathToFileURL(path.join(dir, `work-${b}`)).href,
        params: { iterations: o.iterations, oracle: 'task', proxy_samples: o.samples },
        onIteration: (info) => void times.push(info.seconds),
      });
      log(`${backendDevice()}: ${times.map((s) => s.toFixed(3)).join(' ')} s/iteration`);
      seconds[b] = times.slice(1); // the first iteration warms the backend up
    }
    const base = seconds.tensorflow ? 'tensorflow' : 'wasm';
    const tag = `hard.task.${o.model}.${o.tasks}x${o.samples}${quick ? '.quick' : ''}`;
    return Object.entries(seconds).map(([b, times]) =>
      figure({
        name: `fw_iteration.${tag}.${b}`,
        value: median(times),
        unit: 's/iteration',
        baseline: `${base} backend, same pool and targets (same run)`,
        baseline_value: median(seconds[base]),
        goal: null,
      }),
    );
  },
};
