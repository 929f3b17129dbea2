/**
 * Data-free merge throughput against the memory and I/O floors measured in the same process:
 *  - the merge kernels (Task Arithmetic, weight averaging; TIES and a layer-wise table for information) over
 *    in-memory chunks, in GB/s of memory touched, next to memcpy: on one thread per CPU second (the JavaScript
 *    kernel, and the WebAssembly one with its chunks in its memory and copied in), and as the merge runs them,
 *    split across the kernel threads (kernel_pool.ts, with the finiteness check, the default kernel and the
 *    JavaScript one), per wall second against memcpy's wall (goal: at least half of memcpy);
 *  - whole in-process merges of 8 F32 checkpoints (~100 M parameters each, smaller with --quick), next to a plain
 *    read of every input and write of one output through the same streaming reader and writer.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { Bench, BenchOptions, figure, Figure } from '../harness/types';
import { DataFreeInputs, dataFreeInputs } from '../data_free_inputs';
import { linearMergeInto } from '../../core/merge/coefficients';
import { tiesMergeInto } from '../../core/merge/ties';
import { validateConfig } from '../../core/config/load';
import { runLocalMerge } from '../../core/pipeline/local';
import { Checkpoint } from '../../core/safetensors';
import { normalizeUri, storeFor } from '../../core/store';
import { ShardStream } from '../../core/pipeline/shard_stream';
import { KernelPool, kernelThreads } from '../../core/pipeline/kernel_pool';
import { KernelSpec } from '../../core/pipeline/kernel_range';
import { PartOutput } from '../../core/pipeline/part_output';
import { KernelArena } from '../../core/kernel/arena';
import { ArenaLinear } from '../../core/kernel/linear_wasm';
import { LinearKernel, linearKernel } from '../../core/kernel/choice';

const K = 8;

/** Best of `reps` CPU times (user + system) of fn: on a machine shared with other jobs, steadier than wall. */
function seconds(fn: () => void, reps: number): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = process.cpuUsage();
    fn();
    const u = process.cpuUsage(t);
    best = Math.min(best, (u.user + u.system) / 1e6);
  }
  return best;
}

async function secondsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** The TIES pass state the kernel figures use (every model's threshold, the majority sign). */
const ties = { thresholds: new Array(K).fill(0.005), majoritySign: 1 };

/** Best of `reps` wall times of fn. */
async function wallSeconds(fn: () => Promise<void>, reps: number): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

/** The kernels as the merge runs them: chunks in shared memory split across the kernel threads, per wall second. */
async function poolFigures(quick: boolean, log: (l: string) => void): Promise<Figure[]> {
  const n = quick ? 2 ** 20 : 2 ** 23;
  const reps = quick ? 2 : 4;
  const src = Buffer.alloc(n * 4 * (K + 1), 1);
  const dst = Buffer.alloc(n * 4 * (K + 1));
  const memcpy = (2 * src.byteLength) / (await wallSeconds(async () => void src.copy(dst), reps)) / 1e9;
  const base0 = new Float32Array(n).map((_, i) => Math.sin(i));
  const models0 = Array.from({ length: K }, (_, k) => base0.map((b, i) => b + 0.01 * Math.cos(i * (k + 1))));
  const chunk = Math.floor((96 * 1024 * 1024) /* STREAM_BUDGET */ / (K + 1) / 8);
  const dflt = kernelThreads();
  const engine = linearKernel();
  log(`memcpy ${memcpy.toFixed(2)} GB/s per wall second; kernel threads ${dflt}; linear kernel ${engine}`);
  const tag = quick ? '.quick' : '';
  const linear = (baseFree: boolean): KernelSpec => ({ kind: 'linear', baseFree });
  // name, spec, coefficients, goal, engine (undefined: the default), figure suffix
  const kernels: [string, KernelSpec, number[], boolean, LinearKernel | undefined, string][] = [
    ['task_arithmetic', linear(false), new Array(K).fill(0.3), true, undefined, ''],
    ['weight_average', linear(false), new Array(K).fill(1 / K), true, undefined, ''],
    ['weight_average_base_free', linear(true), new Array(K).fill(1 / K), false, undefined, ''],
    ['task_arithmetic', linear(false), new Array(K).fill(0.3), false, 'js', '.js'],
    ['ties', { kind: 'tensor', method: 'ties', params: { keep: 0.2, scaling: 1 }, state: ties }, [], false, 'js', ''],
  ];
  const figures: Figure[] = [];
  // the default thread count (the goal), and 2 threads where that is not the default
  const runs = [dflt, 2]
    .filter((t, i, a) => a.indexOf(t) === i)
    .flatMap((threads) =>
      kernels.map(([name, spec, coefs, goal, kernel, suffix]) => ({
        name,
        spec,
        coefs,
        goal: goal && threads === dflt,
        kernel,
        suffix,
        threads,
      })),
    );
  for (const { name, spec, coefs, goal, kernel, suffix, threads } of runs) {
    const pool = new KernelPool(spec, threads, undefined, kernel);
    try {
      // the chunks where the merge keeps them: in the pool's WebAssembly memory, else plain shared memory
      const place = (v: Float32Array) => {
        const s = pool.arena ? pool.arena.f32(v.length) : new Float32Array(new SharedArrayBuffer(v.byteLength));
        s.set(v);
        return s;
      };
      const baseFree = spec.kind === 'linear' && spec.baseFree === true;
      const base = baseFree ? place(new Float32Array(chunk)) : place(base0);
      const models = models0.map(place);
      const out = place(new Float32Array(chunk));
      const acc = place(new Float32Array(chunk));
      const touched = n * 4 * (K + (baseFree ? 1 : 2));
      const s = await wallSeconds(async () => {
        for (let lo = 0; lo < n; lo += chunk) {
          const hi = Math.min(n, lo + chunk);
          const b = baseFree ? base.subarray(0, hi - lo) : base.subarray(lo, hi);
          const a = { out, acc, base: b, models: models.map((m) => m.subarray(lo, hi)) };
          if (!(await pool.merge('t', a, coefs))) throw new Error('bench inputs are not finite');
        }
      }, reps);
      const gbs = touched / s / 1e9;
      log(
        `${name}${suffix} kernel (${pool.engine}) on ${threads} threads ${gbs.toFixed(2)} GB/s (${((100 * gbs) / memcpy).toFixed(0)} % of memcpy)`,
      );
      figures.push(
        figure({
          name: `data_free.kernel.${name}.${K}models${tag}.threads${threads}${suffix}.bandwidth`,
          value: gbs,
          unit: 'GB/s',
          baseline: `memcpy (Buffer.copy, one thread, read + write bytes) in this process; both per wall second; the ${pool.engine === 'wasm' ? 'WebAssembly' : 'JavaScript'} kernel split across ${threads} threads with the finiteness check, as the merge runs it`,
          baseline_value: memcpy,
          goal: goal ? 'ratio >= 0.5' : null,
          check: goal ? (_v, r) => r !== null && r >= 0.5 : undefined,
        }),
      );
    } finally {
      await pool.close();
    }
  }
  return figures;
}

/** Kernel GB/s on one thread (bytes of every input read plus the output written) next to memcpy GB/s (read plus write). */
function kernelFigures(quick: boolean, log: (l: string) => void): Figure[] {
  const n = quick ? 2 ** 20 : 2 ** 23;
  const reps = quick ? 2 : 4;
  const src = Buffer.alloc(n * 4 * (K + 1), 1);
  const dst = Buffer.alloc(n * 4 * (K + 1));
  const memcpy = (2 * src.byteLength) / seconds(() => src.copy(dst), reps) / 1e9;
  log(`memcpy ${memcpy.toFixed(2)} GB/s`);
  const base = new Float32Array(n).map((_, i) => Math.sin(i));
  const models = Array.from({ length: K }, (_, k) => base.map((b, i) => b + 0.01 * Math.cos(i * (k + 1))));
  const chunk = Math.floor((96 * 1024 * 1024) /* STREAM_BUDGET */ / (K + 1) / 8);
  const out = new Float32Array(chunk);
  const acc = new Float32Array(chunk);
  const touched = n * 4 * (K + 2);
  const run = (merge: (o: Float32Array, b: Float32Array, ms: Float32Array[]) => void) =>
    touched /
    seconds(() => {
      for (let lo = 0; lo < n; lo += chunk) {
        const hi = Math.min(n, lo + chunk);
        merge(
          out.subarray(0, hi - lo),
          base.subarray(lo, hi),
          models.map((m) => m.subarray(lo, hi)),
        );
      }
    }, reps) /
    1e9;
  const tag = quick ? '.quick' : '';
  // the WebAssembly kernel over the same values: once in its own memory (as the merge keeps its chunks), once
  // from these plain arrays, copied in and out on every call
  const arena = new KernelArena();
  const wasm = new ArenaLinear(arena);
  const inArena = (v: Float32Array) => {
    const a = arena.f32(v.length);
    a.set(v);
    return a;
  };
  const wasmIn = { out: inArena(out), base: inArena(base), models: models.map(inArena) };
  const wasmRun = (coefs: number[], copied: boolean) => {
    const src = copied ? { out, base, models } : wasmIn;
    return run((_o, b) => {
      const lo = (b.byteOffset - base.byteOffset) / 4;
      const at = (v: Float32Array) => v.subarray(lo, lo + b.length);
      wasm.merge(src.out.subarray(0, b.length), at(src.base), src.models.map(at), coefs);
    });
  };
  const kernels: [string, () => number, string][] = [
    ['task_arithmetic', () => run((o, b, ms) => linearMergeInto(o, acc, b, ms, new Array(K).fill(0.3))), 'JavaScript'],
    ['weight_average', () => run((o, b, ms) => linearMergeInto(o, acc, b, ms, new Array(K).fill(1 / K))), 'JavaScript'],
    [
      'layer_wise',
      () => run((o, b, ms) => linearMergeInto(o, acc, b, ms, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])),
      'JavaScript',
    ],
    [
      'ties',
      () => run((o, b, ms) => tiesMergeInto(o, b, ms, ties.thresholds, 1, { keep: 0.2, scaling: 1, merge: 'sum' })),
      'JavaScript',
    ],
    ['task_arithmetic.wasm', () => wasmRun(new Array(K).fill(0.3), false), 'WebAssembly (chunks in its memory)'],
    ['weight_average.wasm', () => wasmRun(new Array(K).fill(1 / K), false), 'WebAssembly (chunks in its memory)'],
    [
      'layer_wise.wasm',
      () => wasmRun([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], false),
      'WebAssembly (chunks in its memory)',
    ],
    [
      'task_arithmetic.wasm_copied',
      () => wasmRun(new Array(K).fill(0.3), true),
      'WebAssembly, chunks copied into its memory and the output out on every call',
    ],
  ];
  const figures: Figure[] = [];
  for (const [name, measure, kernel] of kernels) {
    const gbs = measure();
    log(`${name} kernel ${gbs.toFixed(2)} GB/s (${((100 * gbs) / memcpy).toFixed(0)} % of memcpy)`);
    const [method, variant] = name.split('.');
    figures.push(
      figure({
        name: `data_free.kernel.${method}.${K}models${tag}${variant ? `.${variant}` : ''}.bandwidth`,
        value: gbs,
        unit: 'GB/s',
        baseline: `memcpy (Buffer.copy, read + write bytes) in this process; both per CPU second; the ${kernel} kernel alone on one thread`,
        baseline_value: memcpy,
        goal: null,
      }),
    );
  }
  return figures;
}

/** Read every input once and write the base's bytes out, through the merge's own reader and writer. */
async function readWrite(base: string, models: string[], out: string): Promise<void> {
  const b = await Checkpoint.open(base);
  const ms = await Promise.all(models.map((m) => Checkpoint.open(m)));
  const stream = new ShardStream(b, ms, b.tensors);
  const uri = normalizeUri(out);
  const w = await storeFor(uri).writer(uri);
  const part = new PartOutput(w);
  try {
    for (const t of b.tensors) {
      for await (const c of stream.chunks(t)) {
        const v = c.base;
        (await part.reserve(v.byteLength)).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      }
    }
    await part.flush(true);
    await w.commit();
  } finally {
    await stream.close();
  }
}

async function pipelineFigures(opts: BenchOptions): Promise<Figure[]> {
  const params = opts.quick ? 4e6 : 100e6;
  const inputs = await dataFreeInputs(path.join(opts.dir, 'inputs'), K, params);
  opts.log(`inputs: base + ${K} models of ${(inputs.params / 1e6).toFixed(1)} M F32 parameters`);
  // freshly written inputs are flushed to disk first, so no merge below competes with that writeback
  execFileSync('sync');
  const gb = inputs.bytes / 1e9;
  const tag = `${K}models${opts.quick ? '.quick' : ''}`;
  const figures: Figure[] = [];
  // every merge here hashes its inputs (none takes its digests from the one before), so they compare fairly
  const cacheBefore = process.env.MERGEFLOW_DIGEST_CACHE;
  process.env.MERGEFLOW_DIGEST_CACHE = 'off';
  try {
    return await pipelineRuns(opts, inputs, gb, tag, figures);
  } finally {
    if (cacheBefore === undefined) delete process.env.MERGEFLOW_DIGEST_CACHE;
    else process.env.MERGEFLOW_DIGEST_CACHE = cacheBefore;
  }
}

async function pipelineRuns(
  opts: BenchOptions,
  inputs: DataFreeInputs,
  gb: number,
  tag: string,
  figures: Figure[],
): Promise<Figure[]> {
  for (const [method, parameters, label] of [
    ['task_arithmetic', { scaling: 0.3 }, 'task_arithmetic'],
    ['weight_average', {}, 'weight_average'],
    ['weight_average', { base_free: true }, 'weight_average_base_free'],
  ] as const) {
    // baseline and merge back to back, so both see the same machine load
    const floor = await secondsAsync(() => readWrite(inputs.base, inputs.models, path.join(opts.dir, 'copy.bin')));
    const cfg = validateConfig(
      {
        method,
        base: inputs.base,
        models: inputs.models.map((m, k) => ({ name: `m${k}`, checkpoint: m })),
        parameters,
        output: path.join(opts.dir, `${label}.safetensors`),
      },
      'bench',
    );
    const s = await secondsAsync(() => runLocalMerge(cfg));
    opts.log(`${label}: ${s.toFixed(2)} s (${(gb / s).toFixed(2)} GB/s of inputs); read+write ${floor.toFixed(2)} s`);
    if (label === 'task_arithmetic') {
      // the same merge with the JavaScript kernel
      process.env.MERGEFLOW_KERNEL = 'js';
      const js = await secondsAsync(() => runLocalMerge(cfg)).finally(() => delete process.env.MERGEFLOW_KERNEL);
      opts.log(`${method} with the JavaScript kernel: ${js.toFixed(2)} s`);
      figures.push(
        figure({
          name: `data_free.${method}.${tag}.in_process_wall.${linearKernel()}_vs_js`,
          value: s,
          unit: 's',
          baseline: 'the same merge with MERGEFLOW_KERNEL=js, run right after it',
          baseline_value: js,
          goal: null,
        }),
      );
      // the same merge with the kernel on the calling thread alone (the hashing thread still runs)
      process.env.MERGEFLOW_KERNEL_THREADS = '1';
      const one = await secondsAsync(() => runLocalMerge(cfg)).finally(
        () => delete process.env.MERGEFLOW_KERNEL_THREADS,
      );
      opts.log(`${method} with 1 kernel thread: ${one.toFixed(2)} s`);
      figures.push(
        figure({
          name: `data_free.${method}.${tag}.in_process_wall.threads${kernelThreads()}_vs_1`,
          value: s,
          unit: 's',
          baseline: 'the same merge with MERGEFLOW_KERNEL_THREADS=1, run right after it',
          baseline_value: one,
          goal: null,
        }),
      );
    }
    figures.push(
      figure({
        name: `data_free.${label}.${tag}.in_process_wall`,
        value: s,
        unit: 's',
        baseline: 'read every input once + write one output (same reader/writer, no math), same process',
        baseline_value: floor,
        goal: null,
      }),
    );
  }
  return figures;
}

export const bench: Bench = {
  name: 'data_free_bandwidth',
  description: 'TA / weight averaging merge loop vs memcpy bandwidth, and in-process merges vs plain read+write',
  async run(opts) {
    return [
      ...kernelFigures(opts.quick, opts.log),
      ...(await poolFigures(opts.quick, opts.log)),
      ...(await pipelineFigures(opts)),
    ];
  },
};
