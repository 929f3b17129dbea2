/**
 * What resuming saves: a TIES merge stopped just before publishing (every pass and part committed) is resumed,
 * against the baseline of the same merge run uninterrupted in the same process. The resume verifies each
 * committed object (size and sha256) and then only publishes; its output must equal the baseline's.
 *
 *   node dist/bench/resume.js [--dim 1024] [--layers 4] [--models 4]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { driveMerge, MergeExecutor } from '../core/pipeline/driver';
import { runLocalMerge } from '../core/pipeline/local';
import { dataFreeResume } from '../core/pipeline/resume';
import { coreSteps } from '../core/pipeline/steps';
import { recordRun, openResume } from '../core/resume/support';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { Bench, BenchOptions, Figure, figure } from './harness/types';

const sequential = async <T>(work: readonly (() => Promise<T>)[]): Promise<T[]> => {
  const out: T[] = [];
  for (const w of work) out.push(await w());
  return out;
};

async function seconds<T>(fn: () => Promise<T>): Promise<{ s: number; v: T }> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return { s: Number(process.hrtime.bigint() - t) / 1e9, v };
}

export async function measure(o: BenchOptions & { dim: number; layers: number; models: number }): Promise<Figure[]> {
  const ck = await writeSyntheticCheckpoints(path.join(o.dir, 'in'), {
    seed: 1,
    models: o.models,
    dim: o.dim,
    layers: o.layers,
  });
  const doc = { method: 'ties', base: ck.base, models: ck.models, shards: 4 };
  const full = await seconds(() =>
    runLocalMerge(validateConfig({ ...doc, output: path.join(o.dir, 'full', 'm.safetensors') }, 'bench')),
  );
  o.log(`uninterrupted: ${full.s.toFixed(2)} s`);

  // the same merge, stopped when it would publish: everything else is committed
  const cfg = validateConfig({ ...doc, output: path.join(o.dir, 'resumed', 'm.safetensors') }, 'bench');
  const steps = coreSteps();
  const stopping: MergeExecutor = {
    ...steps,
    all: sequential,
    planMerge: async (c, id) => {
      const plan = await steps.planMerge(c, id);
      await recordRun(dataFreeResume, {
        runId: id,
        workPrefix: plan.workPrefix,
        output: plan.outputFile,
        config: c,
        plan,
      });
      return plan;
    },
    publishMerge: () => Promise.reject(new Error('stopped before publishing')),
  };
  let workPrefix = '';
  await driveMerge(cfg, 'bench-stopped', stopping, { planned: (p) => (workPrefix = p.workPrefix) }).catch(
    () => undefined,
  );

  const resumed = await seconds(async () => {
    const opened = await openResume(dataFreeResume, workPrefix, 'bench-stopped', false);
    return driveMerge(
      cfg,
      'bench-resumed',
      { ...steps, all: sequential },
      {},
      {
        plan: opened.plan!,
        committed: opened.found!,
      },
    );
  });
  if (resumed.v.output.sha256 !== full.v.output.sha256) throw new Error('the resumed output differs');
  o.log(
    `resumed after every unit was committed: ${resumed.s.toFixed(2)} s, reused ${JSON.stringify(resumed.v.reused)}`,
  );
  const size = `${o.models}models.${o.dim}x${o.layers}`;
  return [
    figure({
      name: `resume.ties.${size}.all_committed.wall`,
      value: resumed.s,
      unit: 's',
      baseline: 'the same TIES merge uninterrupted, in this process',
      baseline_value: full.s,
      goal: null,
    }),
  ];
}

export const bench: Bench = {
  name: 'resume',
  description: 'resume a TIES merge stopped before publishing vs. running it uninterrupted',
  run: (o) => measure({ ...o, dim: o.quick ? 256 : 1024, layers: 4, models: 4 }),
};

if (require.main === module) {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-bench-resume-'));
  measure({
    dir,
    quick: false,
    log: (l) => console.error(l),
    dim: arg('dim', 1024),
    layers: arg('layers', 4),
    models: arg('models', 4),
  })
    .then((figs) => console.log(JSON.stringify(figs, null, 2)))
    .finally(() => fs.rmSync(dir, { recursive: true, force: true }))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
