/**
 * Peak RSS of a process running the Frank-Wolfe oracle (the worker's fwOracleShard code, one shard over every
 * merged tensor) as the pool grows: 8, 16, 24 and 32 candidates streamed from the store. Each pool size runs in
 * a fresh child process, so its peak is its own. The baseline is the same child reading every candidate fully
 * into memory first (what the reference FW code does): it grows with the pool, the streamed oracle should not.
 *
 * The models are synthetic CLIP-style ViTs (suite/train initParams; candidates = base + seeded noise), not the
 * suite's fine-tunes; only their size matters here.
 *
 *   npm run build && node dist/bench/frank_wolfe_oracle_rss.js [--width 192 --layers 4 --pools 8,16,24,32] [--store s3://mergeflow/bench]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { applyStackEnv } from '../infra/stack';
import { parseClipVisionConfig, clipVisionParamShapes } from '../core/models/clip_vit';
import { normalish, rngFor } from '../core/data/rng';
import { initParams } from '../core/suite/train';
import { writeModel } from '../core/suite/io';
import { frankWolfeParams } from '../core/merge/frank_wolfe/params';
import type { FwCandidate, FwPlan } from '../core/merge/frank_wolfe/run_types';
import { oracleShardStep, readTheta } from '../core/merge/frank_wolfe/steps';
import { joinUri } from '../core/store';

applyStackEnv();
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

function configOf(width: number, layers: number) {
  return parseClipVisionConfig(
    {
      hidden_size: width,
      intermediate_size: 4 * width,
      num_hidden_layers: layers,
      num_attention_heads: 4,
      image_size: 32,
      patch_size: 8,
      num_channels: 3,
      projection_dim: 64,
    },
    'bench',
  );
}

async function child(): Promise<void> {
  const root = arg('root', '');
  const n = Number(arg('pool', '8'));
  const mode = arg('mode', 'stream');
  const c = configOf(Number(arg('width', '192')), Number(arg('layers', '4')));
  const tensors = clipVisionParamShapes(c).map((s) => s.name);
  const pool: FwCandidate[] = Array.from({ length: n }, (_, m) => ({ name: `m${m}`, uri: joinUri(root, `m${m}`) }));
  const plan = {
    runId: 'bench',
    params: frankWolfeParams.parse({}),
    pool,
    tensors,
    shards: [tensors],
    workPrefix: joinUri(root, 'work') + '/',
  } as unknown as FwPlan;
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let held: unknown[] = [];
  if (mode === 'hold') held = await Promise.all(pool.map((p) => readTheta(p.uri, tensors)));
  const r = await oracleShardStep({
    plan,
    iteration: 0,
    shard: 0,
    grads: [joinUri(root, 'g')],
    mode: 'sum',
    candidates: pool,
  });
  process.stdout.write(
    JSON.stringify({
      n,
      mode,
      rssBefore,
      peak: process.resourceUsage().maxRSS * 1024,
      reads: r.reads,
      held: held.length,
      seconds: (performance.now() - t0) / 1000,
    }) + '\n',
  );
}

async function main(): Promise<void> {
  const width = Number(arg('width', '192'));
  const layers = Number(arg('layers', '4'));
  const pools = arg('pools', '8,16,24,32').split(',').map(Number);
  const root = joinUri(arg('store', 's3://mergeflow/bench'), `fw-rss-${randomBytes(3).toString('hex')}`);
  const c = configOf(width, layers);
  const base = initParams(c, 1);
  const names = Object.keys(base);
  const bytes = names.reduce((a, k) => a + base[k].length * 4, 0);
  console.error(
    `model: width ${width}, ${layers} layers, ${(bytes / 2 ** 20).toFixed(1)} MiB float32; writing ${Math.max(...pools)} candidates to ${root}`,
  );
  const noisy = (seed: string) =>
    Object.fromEntries(
      names.map((k) => {
        const rng = rngFor(7, seed, k);
        return [k, Float32Array.from(base[k], (v) => v + 0.05 * normalish(rng))];
      }),
    );
  await writeModel(joinUri(root, 'g'), c, noisy('g'));
  for (let m = 0; m < Math.max(...pools); m++) await writeModel(joinUri(root, `m${m}`), c, noisy(`m${m}`));
  const rows: string[] = [];
  for (const mode of ['stream', 'hold']) {
    for (const n of pools) {
      const r = spawnSync(
        process.execPath,
        [
          __filename,
          '--child',
          '--root',
          root,
          '--pool',
          String(n),
          '--mode',
          mode,
          '--width',
          String(width),
          '--layers',
          String(layers),
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(r.stderr);
      const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        peak: number;
        rssBefore: number;
        seconds: number;
        reads: number;
      };
      rows.push(
        `| ${mode === 'stream' ? 'streamed (fwOracleShard)' : 'all held (baseline)'} | ${n} | ${(o.rssBefore / 2 ** 20).toFixed(0)} | ${(o.peak / 2 ** 20).toFixed(0)} | ${((o.peak - o.rssBefore) / 2 ** 20).toFixed(0)} | ${o.seconds.toFixed(2)} |`,
      );
      console.error(rows[rows.length - 1]);
    }
  }
  console.log(`model ${(bytes / 2 ** 20).toFixed(1)} MiB (float32), width ${width}, ${layers} layers`);
  console.log('| oracle | candidates | RSS before (MiB) | peak RSS (MiB) | peak − before (MiB) | seconds |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}

(process.argv.includes('--child') ? child() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
