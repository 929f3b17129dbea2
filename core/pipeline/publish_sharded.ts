/**
 * Publishing a sharded output: the shard files (each composed from whole parts), then the index; and keeping
 * one layout per folder. See output_shards.ts for the layout itself.
 */
import { createHash } from 'node:crypto';
import { TensorSpec } from '../safetensors';
import { basenameUri, Committed, joinUri, putObject, readJson, storeFor } from '../store';
import { pool } from '../store/s3_parts';
import { ComposedFile, composeFile } from './compose_file';
import { INDEX_FILE, indexJson, isShardFileName, OutputFilePlan, shardsOf, SINGLE_FILE } from './output_shards';
import type { MergePlan } from './plan';
import type { Progress } from './inputs';
import type { FileHash, Manifest } from './publish';

/** A sharded output's digest: sha256 over each file's name, digest and size, in order (the index last). */
export function filesDigest(files: readonly FileHash[]): string {
  const h = createHash('sha256').update('mergeflow sha256-files v1\n');
  for (const f of files) h.update(`${basenameUri(f.uri)} ${f.sha256} ${f.bytes}\n`);
  return h.digest('hex');
}

/** Shard files composed at once (each is itself a multipart upload of a few parts at a time on S3). */
const FILES_AT_ONCE = 4;

/**
 * An index already in the folder that names a file this publish rewrites (an earlier output of the same file
 * count, or this run's own index before a retry) would describe old and new files at once while they are
 * rewritten: it goes first, so readers meanwhile find no checkpoint rather than a mixed one. An index naming
 * other files keeps describing a complete set until the new index replaces it.
 */
async function dropClashingIndex(plan: MergePlan, files: readonly OutputFilePlan[]): Promise<void> {
  const store = storeFor(plan.outputFile);
  if (!(await store.stat(plan.outputFile))) return;
  const ours = new Set(files.map((f) => f.name));
  const idx = (await readJson(plan.outputFile, () => new Error('unreadable')).catch(() => undefined)) as
    { weight_map?: Record<string, unknown> } | undefined;
  const named = Object.values(idx?.weight_map ?? {});
  if (!idx?.weight_map || named.some((n) => typeof n === 'string' && ours.has(n))) await store.delete(plan.outputFile);
}

/** The shard files (whole parts each), then the index: readers find a checkpoint only once the index is there. */
export async function composeSharded(
  plan: MergePlan,
  files: readonly OutputFilePlan[],
  specs: TensorSpec[],
  parts: readonly Committed[],
  progress?: Progress,
): Promise<Manifest['output']> {
  const folder = plan.outputFolder!;
  await dropClashingIndex(plan, files);
  const placed = files.map(() => 0);
  let total = files.reduce((a, f) => a + f.bytes, 0);
  const written: (ComposedFile | FileHash)[] = await pool(files, FILES_AT_ONCE, (f, i) => {
    const own = shardsOf(f, plan.shards).map((s) => parts[s]);
    const tensors = specs.slice(f.first, f.first + f.count);
    return composeFile(joinUri(folder, f.name), tensors, plan.method, own, (done, size) => {
      // a file's size includes its header: the total grows by each header as its file starts
      if (placed[i] === 0) total += size - f.bytes;
      placed[i] = done;
      return progress?.(
        placed.reduce((a, b) => a + b, 0),
        total,
        f.name,
      );
    });
  });
  const names = specs.map((s) => s.name);
  written.push(await putObject(plan.outputFile, Buffer.from(indexJson(files, names))));
  return {
    uri: plan.outputFile,
    bytes: written.reduce((a, f) => a + f.bytes, 0),
    sha256: filesDigest(written),
    digest: 'sha256-files',
    files: written,
  };
}

/**
 * A folder holds one layout at a time: after a single model.safetensors is committed, an index (and shard
 * files) left by an earlier sharded output there are removed, and after a sharded output's index, an earlier
 * model.safetensors and shard files of another count. Only mergeflow's own file names are touched.
 */
export async function removeOtherLayout(plan: MergePlan): Promise<void> {
  const folder = plan.outputFolder;
  if (!folder) return;
  const store = storeFor(folder);
  const keep = new Set(plan.outputFiles?.map((f) => f.name) ?? []);
  const stale = plan.outputFiles ? joinUri(folder, SINGLE_FILE) : joinUri(folder, INDEX_FILE);
  if (!plan.outputFiles && !(await store.stat(stale))) return;
  await store.delete(stale);
  for (const uri of await store.list(joinUri(folder, '/'))) {
    const name = basenameUri(uri);
    if (uri === joinUri(folder, name) && isShardFileName(name) && !keep.has(name)) await store.delete(uri);
  }
}
