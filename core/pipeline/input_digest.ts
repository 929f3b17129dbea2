/**
 * What the manifest records of each input, computed while merging instead of in a separate pass: every shard
 * hashes the tensor bytes it reads from each input file (sha256, in the shard's tensor order), and the digests
 * of all shards, in shard order, are combined into one sha256 per file. The result is deterministic for the
 * same inputs and plan (same shard split), and changes when any byte the merge used changes.
 */
import { createHash } from 'node:crypto';
import type { FileHash } from './publish';
import type { InputHashes } from './driver';
import type { MergePlan } from './plan';

/** Per input (base first, then the plan's models), per file: the sha256 of the bytes one shard read. */
export type ShardReads = FileHash[][];

/** How the `sha256` of an input file in the manifest was computed. */
export const INPUT_DIGEST = 'sha256 of the per-shard sha256s of the tensor bytes merged (mergeflow shard-sha256 v1)';

export interface InputDigest extends FileHash {
  digest: typeof INPUT_DIGEST;
}

/** Combine the shards' reads into one digest per input file. */
export function combineReads(plan: MergePlan, shards: readonly { reads: ShardReads }[]): InputHashes {
  const inputs = [plan.base, ...plan.models];
  const combined = inputs.map((input, i) => {
    const files = shards[0]?.reads[i] ?? [];
    return files.map((file, f): InputDigest => {
      const h = createHash('sha256').update('mergeflow shard-sha256 v1\n');
      for (const s of shards) {
        const r = s.reads[i]?.[f];
        if (!r || r.uri !== file.uri) throw new Error(`${input.uri}: shards read different files; re-run the merge`);
        h.update(`${r.sha256}\n`);
      }
      return { uri: file.uri, bytes: file.bytes, sha256: h.digest('hex'), digest: INPUT_DIGEST };
    });
  });
  const [base, ...models] = combined;
  return { base, models: Object.fromEntries(plan.models.map((m, i) => [m.name, models[i]])) };
}
