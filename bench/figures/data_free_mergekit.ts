/**
 * mergeflow against mergekit (`pip install mergekit`, not a project dependency) on the same F32 checkpoints:
 * 8 models of ~100 M parameters (smaller with --quick). Each merge runs in a process of its own, so wall time
 * and peak memory are its alone; memory is sampled from /proc (peak RSS and its anonymous part: mergekit maps
 * its inputs, so most of its RSS is page cache). Task Arithmetic at 8, 16 and 24 models shows how memory grows.
 * Outputs are compared tensor by tensor: Task Arithmetic and weight averaging to float tolerance; TIES is
 * reported (mergeflow trims by a global top-k per model, mergekit per tensor, so they differ by design).
 * Weight averaging runs twice against mergekit's `linear`: as mergeflow's default (θ0 + mean τ, reading the
 * base) and with `base_free: true` (the mean of the models, mergekit's semantics). MERGEFLOW_BENCH_COUNTS
 * (e.g. `8`) limits the model counts (default 8,16,24; --quick: 8).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Bench, BenchOptions, figure, Figure } from '../harness/types';
import { DataFreeInputs, dataFreeInputs, measure, Measured } from '../data_free_inputs';
import { Checkpoint } from '../../core/safetensors';

const MERGEKIT = process.env.MERGEKIT_YAML ?? 'mergekit-yaml';

interface Method {
  /** The figures' name for it. */
  name: string;
  /** The config's method (default: name). */
  method?: string;
  params: Record<string, unknown>;
  /** The mergekit YAML for the same merge. */
  yaml: (i: DataFreeInputs, models: string[]) => string;
  /** Goal on mergeflow wall / mergekit wall. */
  wallGoal: number;
  /** Largest |difference| accepted against mergekit (null: reported only). */
  tolerance: number | null;
}

const list = (models: string[], params: string) =>
  models.map((m) => `  - model: ${m}\n    parameters: {${params}}`).join('\n');

/** The methods measured at every model count, not only at 8. */
const ALL_COUNTS = new Set(['task_arithmetic', 'weight_average']);

const METHODS: Method[] = [
  {
    name: 'task_arithmetic',
    params: { scaling: 0.3 },
    yaml: (i, ms) =>
      `merge_method: task_arithmetic\nbase_model: ${i.base}\nmodels:\n${list(ms, 'weight: 0.3')}\ndtype: float32\n`,
    wallGoal: 0.5,
    tolerance: 1e-5,
  },
  {
    name: 'weight_average',
    params: {},
    yaml: (_i, ms) => `merge_method: linear\nmodels:\n${list(ms, 'weight: 1.0')}\ndtype: float32\n`,
    wallGoal: 0.5,
    tolerance: 1e-5,
  },
  {
    name: 'weight_average_base_free',
    method: 'weight_average',
    params: { base_free: true },
    yaml: (_i, ms) => `merge_method: linear\nmodels:\n${list(ms, 'weight: 1.0')}\ndtype: float32\n`,
    wallGoal: 0.5,
    tolerance: 1e-5,
  },
  {
    name: 'ties',
    params: { keep: 0.2, scaling: 1, merge: 'mean' },
    yaml: (i, ms) =>
      `merge_method: ties\nbase_model: ${i.base}\nmodels:\n${list(ms, 'weight: 1.0, density: 0.2')}\n` +
      `parameters: {normalize: true}\ndtype: float32\n`,
    wallGoal: 1.0,
    tolerance: null,
  },
];

/**
 * Flush dirty pages (the inputs just written, the last run's output) before a timed run, so neither tool's
 * time includes the disk writeback of what came before it: without this, the same merge took 3.3 to 5.1 s.
 */
function settle(): void {
  execFileSync('sync');
}

/** A mergeflow merge in its own process; `digests`: its input digest cache folder (empty: every input hashed). */
function mergeflow(
  method: Method,
  i: DataFreeInputs,
  models: string[],
  out: string,
  digests: string,
): Promise<Measured> {
  const child = path.join(__dirname, '..', 'data_free_child.js');
  fs.rmSync(out, { force: true });
  settle();
  return measure(
    process.execPath,
    [child, method.method ?? method.name, JSON.stringify(method.params), out, i.base, ...models],
    { ...process.env, MERGEFLOW_DIGEST_CACHE: digests },
  );
}

function mergekit(method: Method, i: DataFreeInputs, models: string[], dir: string, out: string): Promise<Measured> {
  const cfg = path.join(dir, `${method.name}-${models.length}.yml`);
  fs.writeFileSync(cfg, method.yaml(i, models));
  fs.rmSync(out, { recursive: true, force: true });
  settle();
  return measure(MERGEKIT, [cfg, out, '--no-copy-tokenizer', '--quiet']);
}

/**
 * Timed runs of each tool per figure, taken in turns (MERGEFLOW_BENCH_REPS, default 3): one run of either tool
 * moved by ±20 % here from one try to the next. TIES runs once (mergekit's TIES takes minutes).
 */
function repsFor(method: Method): number {
  const v = process.env.MERGEFLOW_BENCH_REPS;
  const n = v === undefined || v === '' ? 3 : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MERGEFLOW_BENCH_REPS='${v}' is not a whole number >= 1`);
  return method.name === 'ties' ? 1 : n;
}

/** Repeated runs as one: the median wall and CPU time, and the largest peak memory of any run. */
function medianOf(runs: Measured[]): Measured {
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  return {
    wall: median(runs.map((r) => r.wall)),
    cpu: median(runs.map((r) => r.cpu)),
    peakRss: Math.max(...runs.map((r) => r.peakRss)),
    peakAnon: Math.max(...runs.map((r) => r.peakAnon)),
    stdout: runs[runs.length - 1].stdout,
  };
}

/** Largest |a - b| over every tensor of two outputs. */
async function maxAbsDiff(a: string, b: string): Promise<number> {
  const [x, y] = await Promise.all([Checkpoint.open(a), Checkpoint.open(b)]);
  let worst = 0;
  for (const t of x.tensors) {
    const [u, v] = await Promise.all([x.readFloat32(t.name), y.readFloat32(t.name)]);
    for (let j = 0; j < u.length; j++) worst = Math.max(worst, Math.abs(u[j] - v[j]));
  }
  return worst;
}

async function run(opts: BenchOptions): Promise<Figure[]> {
  const params = opts.quick ? 4e6 : 100e6;
  const counts = process.env.MERGEFLOW_BENCH_COUNTS
    ? process.env.MERGEFLOW_BENCH_COUNTS.split(',').map(Number)
    : opts.quick
      ? [8]
      : [8, 16, 24];
  if (counts.some((c) => !Number.isInteger(c) || c < 1))
    throw new Error(
      `MERGEFLOW_BENCH_COUNTS='${process.env.MERGEFLOW_BENCH_COUNTS}' is not a list of model counts, e.g. 8,16`,
    );
  const inputs = await dataFreeInputs(path.join(opts.dir, 'inputs'), Math.max(...counts), params);
  opts.log(`inputs: base + ${Math.max(...counts)} models of ${(inputs.params / 1e6).toFixed(1)} M F32 parameters`);
  // one untimed merge of 2 models by each tool first: the first start of Python + torch (or Node) after the
  // machine was busy reads their libraries from disk, which is not merge time
  await mergekit(METHODS[0], inputs, inputs.models.slice(0, 2), opts.dir, path.join(opts.dir, 'warm-up-mk'));
  fs.rmSync(path.join(opts.dir, 'warm-up-mk'), { recursive: true, force: true });
  const warmUp = path.join(opts.dir, 'warm-up-mf.safetensors');
  await mergeflow(METHODS[0], inputs, inputs.models.slice(0, 2), warmUp, 'off');
  fs.rmSync(warmUp, { force: true });
  const q = opts.quick ? '.quick' : '';
  const figures: Figure[] = [];
  const rss: Record<number, { mf: Measured; mk: Measured }> = {};
  for (const K of counts) {
    const models = inputs.models.slice(0, K);
    // every method at 8 models; Task Arithmetic and weight averaging (the goal names them) at every count
    for (const method of K === 8 ? METHODS : METHODS.filter((m) => ALL_COUNTS.has(m.name))) {
      const mfOut = path.join(opts.dir, `mf-${method.name}-${K}.safetensors`);
      const mkOut = path.join(opts.dir, `mk-${method.name}-${K}`);
      // back to back on the same files, so both see the same page cache and machine load, in turns: mergeflow
      // with an empty digest cache (it hashes every input while merging), mergekit; then mergeflow again with
      // the digests the last run cached (a re-merge of unchanged checkpoints, as a nightly merge mostly is)
      const digests = path.join(opts.dir, `digests-${method.name}-${K}`);
      const [cold, kit]: Measured[][] = [[], []];
      const reps = repsFor(method);
      for (let r = 0; r < reps; r++) {
        fs.rmSync(digests, { recursive: true, force: true });
        cold.push(await mergeflow(method, inputs, models, mfOut, digests));
        kit.push(await mergekit(method, inputs, models, opts.dir, mkOut));
      }
      const [mf, mk] = [medianOf(cold), medianOf(kit)];
      const warm: Measured[] = [];
      for (let r = 0; r < reps; r++) warm.push(await mergeflow(method, inputs, models, mfOut, digests));
      const mfCached = medianOf(warm);
      const diff = await maxAbsDiff(mfOut, path.join(mkOut, 'model.safetensors'));
      fs.rmSync(mkOut, { recursive: true, force: true });
      fs.rmSync(mfOut, { force: true });
      const tag = `${method.name}.${K}models${q}`;
      opts.log(
        `${tag}: mergeflow ${mf.wall.toFixed(1)} s (cpu ${mf.cpu.toFixed(1)}), ${mf.peakRss.toFixed(0)} MB (anon ${mf.peakAnon.toFixed(0)}), ` +
          `digests cached ${mfCached.wall.toFixed(1)} s (cpu ${mfCached.cpu.toFixed(1)}); ` +
          `mergekit ${mk.wall.toFixed(1)} s (cpu ${mk.cpu.toFixed(1)}), ${mk.peakRss.toFixed(0)} MB (anon ${mk.peakAnon.toFixed(0)}); max |diff| ${diff}`,
      );
      if (method.name === 'task_arithmetic') rss[K] = { mf, mk };
      const runs = reps > 1 ? `; medians of ${reps} runs each, taken in turns` : '';
      const vs = `mergekit ${mergekitVersion()}, same inputs, own process${runs}`;
      figures.push(
        figure({
          name: `data_free.mergekit.${tag}.wall`,
          value: mf.wall,
          unit: 's',
          baseline: vs,
          baseline_value: mk.wall,
          goal: `ratio <= ${method.wallGoal}`,
          check: (_v, r) => r !== null && r <= method.wallGoal,
        }),
        figure({
          name: `data_free.mergekit.${tag}.wall.digests_cached`,
          value: mfCached.wall,
          unit: 's',
          baseline: `${vs}; mergeflow's inputs hashed by the run before (its digest cache warm: a re-merge of unchanged checkpoints)`,
          baseline_value: mk.wall,
          goal: `ratio <= ${method.wallGoal}`,
          check: (_v, r) => r !== null && r <= method.wallGoal,
        }),
        figure({
          name: `data_free.mergekit.${tag}.cpu`,
          value: mf.cpu,
          unit: 's',
          baseline: `${vs}: CPU seconds (user + system; steadier than wall on a loaded machine)`,
          baseline_value: mk.cpu,
          goal: null,
        }),
        figure({
          name: `data_free.mergekit.${tag}.peak_anon`,
          value: mf.peakAnon,
          unit: 'MB',
          baseline: `${vs}: its peak anonymous RSS (its whole peak RSS was ${mk.peakRss.toFixed(0)} MB)`,
          baseline_value: mk.peakAnon,
          goal: 'ratio <= 1',
          check: (_v, r) => r !== null && r <= 1,
        }),
        figure({
          name: `data_free.mergekit.${tag}.max_abs_diff`,
          value: diff,
          unit: '',
          baseline: null,
          baseline_value: null,
          goal: method.tolerance === null ? null : `value <= ${method.tolerance}`,
          check: method.tolerance === null ? undefined : (v) => v <= method.tolerance!,
        }),
      );
    }
  }
  if (counts.length > 1) {
    const first = rss[counts[0]].mf.peakRss;
    const last = rss[counts[counts.length - 1]].mf.peakRss;
    figures.push(
      figure({
        name: `data_free.task_arithmetic.peak_rss_growth_${counts[0]}_to_${counts[counts.length - 1]}models${q}`,
        value: last / first,
        unit: 'x',
        baseline: `mergekit's peak anonymous RSS growth over the same counts`,
        baseline_value: rss[counts[counts.length - 1]].mk.peakAnon / rss[counts[0]].mk.peakAnon,
        goal: 'value <= 1.1',
        check: (v) => v <= 1.1,
      }),
    );
  }
  return figures;
}

let version: string | undefined;
function mergekitVersion(): string {
  if (version === undefined) {
    const py = path.join(path.dirname(resolveMergekit() ?? ''), 'python');
    try {
      version = execFileSync(py, ['-c', 'import importlib.metadata as m; print(m.version("mergekit"))'], {
        encoding: 'utf8',
      }).trim();
    } catch {
      version = '(version unknown)';
    }
  }
  return version;
}

function resolveMergekit(): string | undefined {
  if (path.isAbsolute(MERGEKIT)) return fs.existsSync(MERGEKIT) ? MERGEKIT : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, MERGEKIT);
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

export const bench: Bench = {
  name: 'data_free_mergekit',
  description:
    'TA, weight averaging (8, 16, 24 models) and TIES (8) vs mergekit on the same checkpoints: wall, peak memory, equality',
  async unavailable() {
    return resolveMergekit()
      ? undefined
      : `${MERGEKIT} not found: pip install mergekit (or set MERGEKIT_YAML to its mergekit-yaml)`;
  },
  run,
};
