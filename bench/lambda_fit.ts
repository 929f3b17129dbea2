/**
 * What coefficients does a merged model amount to? For each tensor of each MODEL_FOLDER, the least-squares
 * λ_k in θ − θ0 ≈ Σk λ_k τ_k over the suite's K targets (τ_k = target k − θ0). For a layer-wise AdaMerging
 * output with λ inside [0, 1] this recovers the (clamped) coefficients exactly, so merges written before
 * `adamerging_suite.ts` saved its λ (or by any other method) can be compared tensor by tensor: where does the
 * entropy end point differ from the supervised one?
 *
 *   node dist/bench/lambda_fit.js SUITE MODEL_FOLDER... [--match visual_projection] [--json]
 *
 * Tensors that no task vector changes (e.g. the attention key biases) are left out. Prints one row per tensor:
 * the λ of the targets for each folder in turn, then each τ_k's L2 norm.
 */
import * as path from 'node:path';
import { Checkpoint } from '../core/safetensors';
import { joinUri, normalizeUri } from '../core/store';
import { openSuite } from '../core/suite/manifest';
import { opt } from './harness/args';

/** Solve the K×K system G x = b (G symmetric positive semi-definite) by Gaussian elimination with pivoting. */
export function solveNormal(g: number[][], b: number[]): number[] {
  const k = b.length;
  const a = g.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    [a[c], a[p]] = [a[p], a[c]];
    if (Math.abs(a[c][c]) < 1e-300) continue; // a task vector that is zero here: its λ stays 0
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let j = c; j <= k; j++) a[r][j] -= f * a[c][j];
    }
  }
  return a.map((row, i) => (Math.abs(row[i]) < 1e-300 ? 0 : row[k] / row[i]));
}

async function weights(folder: string): Promise<Checkpoint> {
  return Checkpoint.open(joinUri(normalizeUri(path.resolve(folder)), 'model.safetensors'));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--match');
  const [suiteUri, ...folders] = args;
  if (!suiteUri || !folders.length) throw new Error('usage: lambda_fit SUITE MODEL_FOLDER... [--match S] [--json]');
  const suite = await openSuite(suiteUri);
  const match = opt('match');
  const base = await Checkpoint.open(joinUri(suite.pretrained, 'model.safetensors'));
  const targets = await Promise.all(
    suite.targets.map((t) => Checkpoint.open(joinUri(suite.task(t).model, 'model.safetensors'))),
  );
  const merged = await Promise.all(folders.map(weights));
  const rows: { tensor: string; lambda: number[][]; norm: number[] }[] = [];
  for (const { name } of base.tensors) {
    if (match && !name.includes(match)) continue;
    const t0 = await base.readFloat32(name);
    const taus = await Promise.all(targets.map(async (ck) => (await ck.readFloat32(name)).map((v, i) => v - t0[i])));
    const norm = taus.map((t) => Math.sqrt(t.reduce((s, v) => s + v * v, 0)));
    if (norm.every((n) => n === 0)) continue;
    const g = taus.map((a) => taus.map((b) => a.reduce((s, v, i) => s + v * b[i], 0)));
    const lambda: number[][] = [];
    for (const ck of merged) {
      const m = await ck.readFloat32(name);
      const rhs = taus.map((a) => a.reduce((s, v, i) => s + v * (m[i] - t0[i]), 0));
      lambda.push(solveNormal(g, rhs));
    }
    rows.push({ tensor: name, lambda, norm });
  }
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({ targets: suite.targets, folders, rows }, null, 1) + '\n');
    return;
  }
  const f2 = (v: number) => v.toFixed(2);
  process.stdout.write(`targets: ${suite.targets.join(', ')}\nfolders: ${folders.join(' | ')}\n`);
  for (const r of rows)
    process.stdout.write(
      `${r.tensor.replace('vision_model.', '')}  ${r.lambda.map((l) => l.map(f2).join(' ')).join(' | ')}  |τ| ${r.norm.map(f2).join(' ')}\n`,
    );
}

main().catch((e) => {
  process.stderr.write(`lambda_fit: ${(e as Error).message}\n`);
  process.exit(1);
});
