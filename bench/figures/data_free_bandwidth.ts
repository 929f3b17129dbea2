/**
 * Data-free merge throughput against the memory and I/O floors measured in the same process:
 *  - the merge kernels (Task Arithmetic, weight averaging; TIES and a layer-wise table for information) over
 *    in-memory chunks, in GB/s of memory touched, next to memcpy (goal: at least half of memcpy);
 *  - whole in-process merges of 8 F32 checkpoints (~100 M parameters each, smaller with --quick), next to a plain
 *    read of every input and write of one output through the same streaming reader and writer.
 */
import * as path from 'node:path';
import { Bench, BenchOptions, figure, Figure } from '../harness/types';
import { dataFreeInputs } from '../data_free_inputs';
import { linearMergeInto } from '../../core/merge/coefficients';
import { tiesMergeInto } from '../../core/merge/ties';
import { validateConfig } from '../../core/config/load';
import { runLocalMerge } from '../../core/pipeline/local';
import { Checkpoint } from '../../core/safetensors';
import { normalizeUri, storeFor } from '../../core/store';
import { ShardStream } from '../../core/pipeline/shard_stream';
import { PartOutput } from '../../core/pipeline/part_output';

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

/** Kernel GB/s (bytes of every input read plus the output written) next to memcpy GB/s (read plus write). */
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
  const kernels: [string, (o: Float32Array, b: Float32Array, ms: Float32Array[]) => void, boolean][] = [
    ['task_arithmetic', (o, b, ms) => linearMergeInto(o, acc, b, ms, new Array(K).fill(0.3)), true],
    ['weight_average', (o, b, ms) => linearMergeInto(o, acc, b, ms, new Array(K).fill(1 / K)), true],
    ['layer_wise', (o, b, ms) => linearMergeInto(o, acc, b, ms, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]), false],
    [
      'ties',
      (o, b, ms) => tiesMergeInto(o, b, ms, new Array(K).fill(0.005), 1, { keep: 0.2, scaling: 1, merge: 'sum' }),
      false,
    ],
  ];
  const figures: Figure[] = [];
  for (const [name, merge, goal] of kernels) {
    const gbs = run(merge);
    log(`${name} kernel ${gbs.toFixed(2)} GB/s (${((100 * gbs) / memcpy).toFixed(0)} % of memcpy)`);
    figures.push(
      figure({
        name: `data_free.kernel.${name}.${K}models${tag}.bandwidth`,
        value: gbs,
        unit: 'GB/s',
        baseline: 'memcpy (Buffer.copy, read + write bytes) in this process; both per CPU second',
        baseline_value: memcpy,
        goal: goal ? 'ratio >= 0.5' : null,
        check: goal ? (_v, r) => r !== null && r >= 0.5 : undefined,
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
  const gb = inputs.bytes / 1e9;
  const tag = `${K}models${opts.quick ? '.quick' : ''}`;
  const figures: Figure[] = [];
  for (const [method, parameters] of [
    ['task_arithmetic', { scaling: 0.3 }],
    ['weight_average', {}],
  ] as const) {
    // baseline and merge back to back, so both see the same machine load
    const floor = await secondsAsync(() => readWrite(inputs.base, inputs.models, path.join(opts.dir, 'copy.bin')));
    const cfg = validateConfig(
      {
        method,
        base: inputs.base,
        models: inputs.models.map((m, k) => ({ name: `m${k}`, checkpoint: m })),
        parameters,
        output: path.join(opts.dir, `${method}.safetensors`),
      },
      'bench',
    );
    const s = await secondsAsync(() => runLocalMerge(cfg));
    opts.log(`${method}: ${s.toFixed(2)} s (${(gb / s).toFixed(2)} GB/s of inputs); read+write ${floor.toFixed(2)} s`);
    figures.push(
      figure({
        name: `data_free.${method}.${tag}.in_process_wall`,
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
    return [...kernelFigures(opts.quick, opts.log), ...(await pipelineFigures(opts))];
  },
};
