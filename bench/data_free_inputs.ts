/**
 * Inputs and process measurement shared by the data-free benchmarks: Hugging Face style folders (config.json +
 * model.safetensors, all F32) of a base and K fine-tuned models, and a way to run a command while sampling its
 * memory from /proc (peak RSS, and its anonymous part, which excludes page-cache pages of mapped files).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeTensors } from '../core/safetensors';
import { normalizeUri } from '../core/store';

export interface DataFreeInputs {
  base: string;
  models: string[];
  params: number;
  /** Bytes of every input file together. */
  bytes: number;
}

/** Layer shapes of a checkpoint with about `params` parameters (square layers of width 2048, or 512 when tiny). */
function shapes(params: number): Record<string, number[]> {
  const dim = params >= 50e6 ? 2048 : 512;
  const layers = Math.max(1, Math.round(params / (dim * dim + dim)));
  const out: Record<string, number[]> = {};
  for (let l = 0; l < layers; l++) {
    out[`model.layers.${l}.weight`] = [dim, dim];
    out[`model.layers.${l}.bias`] = [dim];
  }
  return out;
}

function fill(n: number, seed: number, around?: Float32Array): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2 ** 32 - 0.5;
    out[i] = around ? around[i] + 0.01 * u : 0.04 * u;
  }
  return out;
}

/** Writes (or reuses, when already there) a base and `models` fine-tuned folders under dir. */
export async function dataFreeInputs(dir: string, models: number, params: number): Promise<DataFreeInputs> {
  const sh = shapes(params);
  const names = Object.keys(sh);
  const folder = (k: number) => path.join(dir, k < 0 ? 'base' : `model-${k}`);
  const baseVals = new Map<string, Float32Array>();
  const baseOf = (name: string, i: number) => {
    let v = baseVals.get(name);
    if (!v)
      baseVals.set(
        name,
        (v = fill(
          sh[name].reduce((a, b) => a * b, 1),
          7 + i,
        )),
      );
    return v;
  };
  let bytes = 0;
  for (let k = -1; k < models; k++) {
    const f = folder(k);
    const file = path.join(f, 'model.safetensors');
    if (!fs.existsSync(file)) {
      fs.mkdirSync(f, { recursive: true });
      // an architecture mergekit does not know and transformers cannot build: mergekit reads the tensor names
      fs.writeFileSync(
        path.join(f, 'config.json'),
        JSON.stringify({ model_type: 'gpt2', architectures: ['MergeflowBench'], n_embd: 10, n_head: 3 }) + '\n',
      );
      await writeTensors(
        normalizeUri(file),
        names.map((name, i) => {
          const v = k < 0 ? baseOf(name, i) : fill(baseOf(name, i).length, 1000 * (k + 1) + i, baseOf(name, i));
          return { name, dtype: 'F32' as const, shape: sh[name], data: new Uint8Array(v.buffer) };
        }),
      );
    }
    bytes += fs.statSync(file).size;
  }
  const params_ = names.reduce((a, n) => a + sh[n].reduce((x, y) => x * y, 1), 0);
  return {
    base: folder(-1),
    models: Array.from({ length: models }, (_, k) => folder(k)),
    params: params_,
    bytes,
  };
}

export interface Measured {
  wall: number;
  /** CPU seconds (user + system) of the command and its children: under machine load, steadier than wall. */
  cpu: number;
  /**
   * Peak resident set, MB: the kernel's high-water mark (VmHWM) of the command and its descendants, read every
   * 50 ms (it only grows, so short peaks between samples are counted too).
   */
  peakRss: number;
  /** Peak anonymous resident memory (sampled RssAnon), MB. */
  peakAnon: number;
  stdout: string;
}

function statusKb(key: string, text: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** The children's user and system time from the last line of bash's `times` ("0m1.5s 0m0.2s"). */
function childCpu(stderr: string): number {
  const last = stderr.trim().split('\n').pop() ?? '';
  const t = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return t.length === 2 ? t[0] + t[1] : NaN;
}

/** Run a command, sampling /proc/PID/status every 50 ms; rejects on a non-zero exit with its stderr tail. */
export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // bash runs the command and then prints its children's CPU times (`times`, last line) on stderr
    const script = '"$@"; rc=$?; times >&2; exit $rc';
    const child = spawn('bash', ['-c', script, 'measure', cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    let rss = 0;
    let anon = 0;
    // the command and its descendants (not bash itself): their RSS high-water marks and sampled anonymous RSS,
    // summed, at their peak
    const sample = () => {
      let [r, a] = [0, 0];
      const walk = (pid: number) => {
        try {
          const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
          if (pid !== child.pid) [r, a] = [r + statusKb('VmHWM', s), a + statusKb('RssAnon', s)];
          const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
          for (const k of kids ? kids.split(/\s+/) : []) walk(Number(k));
        } catch {
          // the process has just exited
        }
      };
      walk(child.pid!);
      [rss, anon] = [Math.max(rss, r), Math.max(anon, a)];
    };
    const timer = setInterval(sample, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().slice(-800)}`));
      else resolve({ wall, cpu: childCpu(stderr), peakRss: rss / 1024, peakAnon: anon / 1024, stdout });
    });
  });
}
