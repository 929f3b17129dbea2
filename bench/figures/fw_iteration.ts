/**
 * One FW-Hard iteration (task-wise oracle, cross-entropy on a labeled proxy set per target, TA local merge)
 * run in this process by runFrankWolfeLocal, on each installed TensorFlow.js backend. No script times an FW
 * iteration, so this bench does: the seconds each iteration reports (gradient at θt, the oracle streaming the
 * pool, the update), not the TA start; the first iteration is a warm-up and is left out. The pool is the synthetic AdaMerging fixture
 * (core/synthetic_adamerging) written to the scratch folder: the mini-8 suite's full-size encoder with
 * 8 candidates and 8 targets of 16 proxy images, or with --quick the tests' tiny model with 4 of each.
 * Baseline: PyTorch on the CPU, one thread, doing the same first iteration on the same θ0, candidates and
 * proxy rows (bench/reference/fw_iteration.py, every candidate in memory); its losses and pick must be ours.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFrankWolfeLocal } from '../../core/merge/frank_wolfe/local_run';
import { TINY, writeAdaFixture } from '../../core/synthetic_adamerging';
import { RECIPES } from '../../core/suite/recipe';
import { backendDevice, initBackend, installedBackends } from '../../core/tensor/backend';
import { median, torchUnavailable } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';
import { clipVisionParamShapes } from '../../core/models/clip_vit';
import { readClipVisionConfig } from '../../core/models/clip_vit_load';
import { PYTHON, runTorchFw, writeFwProblem } from '../fw_torch';

export const bench: Bench = {
  name: 'fw_iteration',
  description: 'one FW-Hard iteration (task-wise, cross-entropy proxy) in process per tfjs backend vs PyTorch CPU',
  async unavailable() {
    return torchUnavailable(PYTHON);
  },
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
    const first: Record<string, { losses: number[]; pick: string }> = {};
    const pool = fx.tasks.map((t) => ({ name: t.name, model: t.model }));
    const targets = fx.tasks.map((t) => ({ name: t.name, head: t.head, proxy: t.data }));
    const params = { iterations: o.iterations, oracle: 'task' as const, proxy_samples: o.samples };
    const work = (b: string) => pathToFileURL(path.join(dir, `work-${b}`)).href;
    for (const b of installedBackends()) {
      const got = await initBackend(b);
      if (got !== b) throw new Error(`backend '${b}' did not start (got '${got}')`);
      const times: number[] = [];
      await runFrankWolfeLocal({
        pretrained: fx.pretrained,
        pool,
        targets,
        workDir: work(b),
        params,
        onIteration: (info) => {
          times.push(info.seconds);
          if (info.iteration === 0) first[b] = { losses: info.lossPerTarget, pick: info.picks[0].split('×')[0] };
        },
      });
      log(`${backendDevice()}: ${times.map((s) => s.toFixed(3)).join(' ')} s/iteration`);
      seconds[b] = times.slice(1); // the first iteration warms the backend up
    }
    const b0 = Object.keys(seconds)[0];
    const file = path.join(dir, 'fw-iteration.safetensors');
    const config = await readClipVisionConfig(fx.pretrained);
    const tensors = clipVisionParamShapes(config).map((s) => s.name);
    await writeFwProblem(file, { config, tensors, start: `${work(b0)}/start`, pool, targets, params });
    const torch = runTorchFw(file, quick ? 2 : 5);
    log(`PyTorch ${torch.torch}, 1 thread: ${torch.median.toFixed(3)} s/iteration; pick ${torch.pick}`);
    const tag = `hard.task.${o.model}.${o.tasks}x${o.samples}${quick ? '.quick' : ''}`;
    return Object.entries(seconds).flatMap(([b, times]) => {
      const loss = Math.max(...first[b].losses.map((l, j) => Math.abs(l - torch.loss_per_target[j]) / Math.abs(l)));
      log(`${b}: first pick ${first[b].pick} (PyTorch: ${torch.pick}); losses differ by ${loss.toExponential(2)}`);
      return [
        figure({
          name: `fw_iteration.${tag}.${b}`,
          value: median(times),
          unit: 's/iteration',
          baseline: `PyTorch ${torch.torch} CPU, 1 thread, the same first iteration (θ0, candidates, proxy rows), candidates in memory`,
          baseline_value: torch.median,
          goal: null,
        }),
        figure({
          name: `fw_iteration.agreement.${tag}.${b}`,
          value: first[b].pick === torch.pick ? loss : Infinity,
          unit: 'max relative difference of the per-target losses at θ0 (Infinity: another pick)',
          baseline: null,
          baseline_value: null,
          goal: 'value <= 0.001 and the same pick as PyTorch',
          check: (v) => v <= 1e-3,
        }),
      ];
    });
  },
};
