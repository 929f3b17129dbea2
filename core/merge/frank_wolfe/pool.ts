/**
 * The Frank-Wolfe candidate pool: listed in the config, or discovered under a store prefix, then checked
 * against the base from headers alone. Discovery takes every folder holding a model.safetensors (or a sharded
 * model.safetensors.index.json) and every other .safetensors object, named by its folder or file stem, sorted
 * by name; the base itself and mergeflow's work folders are left out.
 */
import { Checkpoint, isFloatDType } from '../../safetensors';
import { dirnameUri, storeFor } from '../../store';
import { InputMismatchError } from '../../pipeline/plan';
import type { FwCandidate } from './run_types';
import { START_CANDIDATE } from './run_types';
import { openedInParallel } from './open_parallel';

const SHARD = /\/model-\d+-of-\d+\.safetensors$/;

/** Candidates under `prefix`, sorted by name; an empty prefix is an error. */
export async function discoverPool(prefix: string, base: string): Promise<FwCandidate[]> {
  const root = prefix.replace(/\/+$/, '') + '/';
  const objects = await storeFor(root).list(root);
  const baseKey = base.replace(/\/+$/, '').replace(/\/model\.safetensors$/, '');
  const found = new Map<string, string>();
  for (const uri of objects) {
    if (uri.includes('/.mergeflow-work/')) continue;
    let cand: string | undefined;
    if (/\/model\.safetensors(\.index\.json)?$/.test(uri)) cand = dirnameUri(uri);
    else if (uri.endsWith('.safetensors') && !SHARD.test(uri)) cand = uri;
    if (!cand || cand === baseKey || cand + '/' === root) continue;
    const rel = cand.slice(root.length).replace(/\.safetensors$/, '');
    found.set(cand, rel.replace(/[^A-Za-z0-9_.-]/g, '-'));
  }
  if (found.size === 0)
    throw new InputMismatchError(
      `pool prefix ${root} holds no checkpoint (no model.safetensors folder or .safetensors object); check the prefix or list the pool`,
    );
  const pool = [...found].map(([uri, name]) => ({ name, uri })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const names = new Set<string>();
  for (const c of pool) {
    if (names.has(c.name)) throw new InputMismatchError(`pool prefix ${root}: two checkpoints are named '${c.name}'`);
    names.add(c.name);
  }
  return pool;
}

/** The first difference of a candidate from the base over the merged tensors, or undefined. */
export function firstDifference(base: Checkpoint, ck: Checkpoint, tensors: readonly string[]): string | undefined {
  for (const n of tensors) {
    if (!ck.has(n)) return `has no tensor '${n}'`;
    const [b, m] = [base.info(n), ck.info(n)];
    if (m.shape.join(',') !== b.shape.join(',')) return `tensor '${n}' is [${m.shape}], the base's [${b.shape}]`;
    if (!isFloatDType(m.dtype)) return `tensor '${n}' is ${m.dtype}, not a float dtype`;
    if (m.dtype !== b.dtype) return `tensor '${n}' is ${m.dtype}, the base's ${b.dtype}`;
  }
  const merged = new Set(tensors);
  const extra = ck.tensors.find((t) => !merged.has(t.name) && !base.has(t.name));
  if (extra) return `has tensor '${extra.name}' that the base lacks`;
  return undefined;
}

export interface CheckedPool {
  pool: FwCandidate[];
  warnings: string[];
}

/**
 * Open every candidate's header and compare it with the base: an incompatible one is refused (or left out with
 * a warning when `skip`); two entries that resolve to the same files are refused.
 */
export async function checkPool(
  base: Checkpoint,
  pool: readonly FwCandidate[],
  tensors: readonly string[],
  skip: boolean,
): Promise<CheckedPool> {
  const warnings: string[] = [];
  const out: FwCandidate[] = [];
  const byFiles = new Map<string, string>();
  // every header at once (over S3 each is a round trip); checked below in pool order, as one by one
  const opened = await openedInParallel(pool, (c) =>
    c.name === START_CANDIDATE ? Promise.resolve(undefined) : Checkpoint.open(c.uri),
  );
  for (const [i, c] of pool.entries()) {
    if (c.name === START_CANDIDATE)
      throw new InputMismatchError(`candidate '${c.name}': that name is kept for FW-Hard's start; rename it`);
    const o = opened[i];
    if ('error' in o) throw new InputMismatchError(`candidate '${c.name}' (${c.uri}): ${(o.error as Error).message}`);
    const ck = o.value!;
    const files = ck.files.map((f) => f.uri).join('\n');
    const same = byFiles.get(files);
    if (same !== undefined)
      throw new InputMismatchError(
        `candidates '${same}' and '${c.name}' are the same checkpoint (${ck.uri}); the pool must hold each model once`,
      );
    byFiles.set(files, c.name);
    const diff = firstDifference(base, ck, tensors);
    if (diff) {
      const msg = `candidate '${c.name}' (${ck.uri}) ${diff}`;
      if (!skip)
        throw new InputMismatchError(
          `${msg}; every candidate must match the base's tensors (or set skip_incompatible: true)`,
        );
      warnings.push(`${msg}: skipped (skip_incompatible)`);
      continue;
    }
    out.push({ name: c.name, uri: ck.uri });
  }
  if (out.length === 0) throw new InputMismatchError('the pool has no compatible candidate');
  return { pool: out, warnings };
}
