/**
 * The PyTorch baseline of the fw_iteration bench: writes one FW-Hard iteration's inputs as the in-process run
 * saw them at t = 0 (θ0 = its Task Arithmetic start, every candidate's full weights with the start last, the
 * heads, each target's proxy rows and labels), runs bench/reference/fw_iteration.py on them, and returns its
 * times with the losses, scores and pick it computed.
 */
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openDataset } from '../core/data/dataset';
import { frankWolfeParams } from '../core/merge/frank_wolfe/params';
import { hardCoefficient } from '../core/merge/frank_wolfe/fw_hard';
import { proxyRows } from '../core/merge/frank_wolfe/local_run';
import { ClipVisionConfig } from '../core/models/clip_vit';
import { disposeHead, loadHead } from '../core/models/head';
import { Checkpoint, writeTensors } from '../core/safetensors';
import { normalizeUri } from '../core/store';

export const PYTHON = process.env.MERGEFLOW_PYTHON ?? 'python3';
const SCRIPT = path.join(__dirname, '..', '..', 'bench', 'reference', 'fw_iteration.py');

export interface TorchFw {
  torch: string;
  seconds: number[];
  median: number;
  loss_per_target: number[];
  scores: number[];
  pick: string;
}

export interface FwProblem {
  config: ClipVisionConfig;
  tensors: string[];
  /** θ0: the folder or file the run started from. */
  start: string;
  pool: { name: string; model: string }[];
  targets: { name: string; head: string; proxy: string }[];
  params: Record<string, unknown>;
}

const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function weights(uri: string, names: readonly string[]) {
  const ck = await Checkpoint.open(normalizeUri(uri));
  return Promise.all(names.map(async (n) => ({ n, shape: ck.info(n).shape, data: await ck.readFloat32(n) })));
}

export async function writeFwProblem(file: string, p: FwProblem): Promise<void> {
  const fw = frankWolfeParams.parse(p.params);
  const out: { name: string; dtype: 'F32' | 'I32'; shape: readonly number[]; data: Uint8Array }[] = [];
  for (const w of await weights(p.start, p.tensors))
    out.push({ name: `theta.${w.n}`, dtype: 'F32', shape: w.shape, data: bytes(w.data) });
  const candidates = [...p.pool, { name: 'start', model: p.start }];
  for (const [m, c] of candidates.entries())
    for (const w of await weights(c.model, p.tensors))
      out.push({ name: `cand.${m}.${w.n}`, dtype: 'F32', shape: w.shape, data: bytes(w.data) });
  for (const [j, t] of p.targets.entries()) {
    const h = await loadHead(t.head);
    try {
      out.push({
        name: `heads.${j}.weight`,
        dtype: 'F32',
        shape: h.weight.shape,
        data: bytes(h.weight.dataSync() as Float32Array),
      });
      out.push({
        name: `heads.${j}.logit_scale`,
        dtype: 'F32',
        shape: [1],
        data: bytes(Float32Array.of(h.logitScale)),
      });
      if (h.bias)
        out.push({
          name: `heads.${j}.bias`,
          dtype: 'F32',
          shape: h.bias.shape,
          data: bytes(h.bias.dataSync() as Float32Array),
        });
    } finally {
      disposeHead(h);
    }
    const ds = await openDataset(normalizeUri(t.proxy));
    const b = await ds.readRows(proxyRows(fw.seed, t.name, ds.n, fw.proxy_samples, 0));
    if (!b.labels) throw new Error(`${t.proxy}: the proxy set has no labels`);
    out.push({ name: `inputs.${j}`, dtype: 'F32', shape: b.shape, data: bytes(b.inputs) });
    out.push({ name: `labels.${j}`, dtype: 'I32', shape: [b.labels.length], data: bytes(b.labels) });
  }
  await writeTensors(file, out, {
    config: JSON.stringify(p.config),
    tensors: JSON.stringify(p.tensors),
    candidates: JSON.stringify(candidates.map((c) => c.name)),
    targets: JSON.stringify(p.targets.map((t) => t.name)),
    a: String(hardCoefficient(0, fw.step_size, fw.scaling)),
    scale_tasks: String(p.targets.length),
  });
}

export function runTorchFw(file: string, iterations: number): TorchFw {
  const r = spawnSync(PYTHON, [SCRIPT, file, '--iterations', String(iterations), '--threads', '1'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(`${SCRIPT} failed (${r.status ?? r.signal}): ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as TorchFw;
}
