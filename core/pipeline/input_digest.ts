/**
 * What the manifest records of each input, computed while merging instead of in a separate pass: every shard
 * hashes the tensor bytes it reads from each input file (BLAKE3, in the shard's tensor order: core/hash), and
 * the digests of all shards, in shard order, are combined into one sha256 per file. The result is
 * deterministic for the same inputs and plan (same shard split), and changes when any byte the merge used
 * changes. (v1 hashed each shard's bytes with sha256; BLAKE3 is 2.4× faster here, and hashing is what a merge
 * of checkpoints it has not seen before pays for.)
 */
import { createHash } from 'node:crypto';
import type { FileHash } from './publish';
import type { InputHashes } from './driver';
import type { MergePlan } from './plan';

/** One shard's read of one input file: the BLAKE3 (hex) of the bytes it read ('' when it read none). */
export interface FileRead {
  uri: string;
  bytes: number;
  blake3: string;
}

/** Per input (base first, then the plan's models), per file: what one shard read. */
export type ShardReads = FileRead[][];

/** The first line of what an input file's digest is the sha256 of (then one shard's BLAKE3 per line). */
export const INPUT_DIGEST_TAG = 'mergeflow shard-blake3 v2';

/** How the `sha256` of an input file in the manifest was computed. */
export const INPUT_DIGEST = `sha256 of the per-shard BLAKE3s of the tensor bytes merged (${INPUT_DIGEST_TAG})`;

export interface InputDigest extends FileHash {
  digest: typeof INPUT_DIGEST;
}

/** Combine the shards' reads into one digest per input file. */
export function combineReads(plan: MergePlan, shards: readonly { reads: ShardReads }[]): InputHashes {
  const inputs = [plan.base, ...plan.models];
  const combined = inputs.map((input, i) => {
    const files = shards[0]?.reads[i] ?? [];
    return files.map((file, f): InputDigest => {
      const h = createHash('sha256').update(`${INPUT_DIGEST_TAG}\n`);
      for (const s of shards) {
        const r = s.reads[i]?.[f];
        if (!r || r.uri !== file.uri) throw new Error(`${input.uri}: shards read different files; re-run the merge`);
        if (typeof r.blake3 !== 'string')
          throw new Error(
            `${input.uri}: a shard was merged by an older mergeflow (no BLAKE3 digest); re-run the merge`,
          );
        h.update(`${r.blake3}\n`);
      }
      return { uri: file.uri, bytes: file.bytes, sha256: h.digest('hex'), digest: INPUT_DIGEST };
    });
  });
  const [base, ...models] = combined;
  return { base, models: Object.fromEntries(plan.models.map((m, i) => [m.name, models[i]])) };
}
