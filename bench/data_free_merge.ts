/**
 * Data-free merge throughput on this machine, against a baseline measured in the same process:
 * the baseline reads every input tensor once and writes the output (pure I/O, no math), which is the
 * floor for any streamed merge. Prints seconds, input GB/s, the ratio to the baseline and peak RSS.
 *
 *   node dist/bench/data_free_merge.js [--dim 2048] [--layers 4] [--models 4] [--dir /tmp/x]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';
import { Checkpoint, writeSafetensors } from '../core/safetensors';
import { writeSyntheticCheckpoints } from '../core/synthetic';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; v: T }> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return { s: Number(process.hrtime.bigint() - t) / 1e9, v };
}

async function main(): Promise<void> {
  const dim = arg('dim', 2048);
  const layers = arg('layers', 4);
  const K = arg('models', 4);
  const i = process.argv.indexOf('--dir');
  const dir = i > 0 ? process.argv[i + 1] : fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-bench-'));
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 1, models: K, dim, layers });
  const inputBytes = [ck.base, ...ck.models.map((m) => m.checkpoint)].reduce(
    (a, u) => a + fs.statSync(new URL(u)).size,
    0,
  );
  console.log(`inputs: base + ${K} models, ${(inputBytes / 1e9).toFixed(3)} GB total, dim ${dim}, ${layers} layers`);

  // Baseline: read each tensor of every input once, write the base's tensors out.
  const base = await Checkpoint.open(ck.base);
  const models = await Promise.all(ck.models.map((m) => Checkpoint.open(m.checkpoint)));
  const baseline = await timed(() =>
    writeSafetensors(path.join(dir, 'baseline.safetensors'), base.tensors, async (t) => {
      for (const m of models) await m.readBytes(t.name);
      return base.readBytes(t.name);
    }),
  );
  const rows: [string, number][] = [['baseline (read all, write one)', baseline.s]];
  for (const [method, parameters] of [
    ['weight_average', {}],
    ['task_arithmetic', { scaling: 0.3 }],
    ['ties', { keep: 0.2, scaling: 0.3 }],
  ] as const) {
    const cfg = validateConfig(
      {
        method,
        base: ck.base,
        models: ck.models,
        parameters,
        output: path.join(dir, `${method}.safetensors`),
        shards: 4,
      },
      'bench',
    );
    const r = await timed(() => runLocalMerge(cfg));
    rows.push([method, r.s]);
  }
  console.log('\n| step | seconds | input GB/s | × baseline |\n|---|---|---|---|');
  for (const [name, s] of rows) {
    console.log(
      `| ${name} | ${s.toFixed(2)} | ${(inputBytes / 1e9 / s).toFixed(2)} | ${(s / baseline.s).toFixed(2)} |`,
    );
  }
  console.log(
    `\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (one tensor per model held at a time)`,
  );
  if (i < 0) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
