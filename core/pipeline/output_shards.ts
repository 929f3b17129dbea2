/**
 * A sharded output in the Hugging Face layout, as mergekit writes it: `model-0000N-of-0000M.safetensors` files
 * and `model.safetensors.index.json` ({"metadata": {"total_size"}, "weight_map": {tensor: file}}). Tensors keep
 * the single-file order and are split greedily at tensor boundaries: a file takes tensors while their bytes stay
 * within the limit, and a tensor larger than the limit gets a file of its own. Pure arithmetic on the plan.
 */
import type { ShardPlan } from './plan';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/** One output file: a contiguous range of tensors (in base order) and their data bytes. */
export interface OutputFilePlan {
  name: string;
  first: number;
  count: number;
  bytes: number;
}

export function shardFileName(i: number, total: number): string {
  const pad = (n: number): string => String(n).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(total)}.safetensors`;
}

/** True for a name this layout gives a shard file (of any count). */
export function isShardFileName(name: string): boolean {
  return /^model-\d{5}-of-\d{5}\.safetensors$/.test(name);
}

/** Tensors' byte sizes split greedily under `limit`; one file (no sharding) when they all fit. */
export function splitOutputFiles(sizes: readonly number[], limit: number): OutputFilePlan[] {
  const groups: { first: number; count: number; bytes: number }[] = [];
  let cur: { first: number; count: number; bytes: number } | undefined;
  sizes.forEach((n, i) => {
    if (!cur || (cur.count > 0 && cur.bytes + n > limit)) {
      cur = { first: i, count: 0, bytes: 0 };
      groups.push(cur);
    }
    cur.count++;
    cur.bytes += n;
  });
  return groups.map((g, i) => ({ ...g, name: groups.length === 1 ? SINGLE_FILE : shardFileName(i, groups.length) }));
}

/**
 * The merge shards cut again where an output file starts, so that every file is made of whole parts (its
 * digest then comes from the parts' sha256, as the single file's does). Shards are renumbered in order.
 */
export function alignShards(
  shards: readonly ShardPlan[],
  files: readonly OutputFilePlan[],
  elements: readonly number[],
): ShardPlan[] {
  const starts = new Set(files.map((f) => f.first));
  const out: ShardPlan[] = [];
  for (const s of shards) {
    let first = s.first;
    for (let i = s.first + 1; i <= s.first + s.count; i++) {
      if (i === s.first + s.count || starts.has(i)) {
        let n = 0;
        for (let j = first; j < i; j++) n += elements[j];
        out.push({ index: out.length, first, count: i - first, elements: n });
        first = i;
      }
    }
  }
  return out;
}

/** The shards (by index) whose tensors make up `file`, in order. */
export function shardsOf(file: OutputFilePlan, shards: readonly ShardPlan[]): number[] {
  return shards.filter((s) => s.first >= file.first && s.first < file.first + file.count).map((s) => s.index);
}

/** The index JSON of a sharded output (Hugging Face layout). */
export function indexJson(files: readonly OutputFilePlan[], tensorNames: readonly string[]): string {
  // no prototype: a tensor named __proto__ is a key like any other
  const weightMap: Record<string, string> = Object.create(null);
  for (const f of files) for (let i = f.first; i < f.first + f.count; i++) weightMap[tensorNames[i]] = f.name;
  const totalSize = files.reduce((a, f) => a + f.bytes, 0);
  return JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n';
}
