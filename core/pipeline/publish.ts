/** Assemble the output from the shard parts, write the manifest beside it, then clear the work prefix. */
import { Checkpoint } from '../safetensors';
import * as fs from 'node:fs/promises';
import { Committed, joinUri, putObject, readJson, storeFor, basenameUri, filePath, sha256Of } from '../store';
import { MergePlan } from './plan';
import { outputSpecs } from './staged_output';
import { ComposedFile, composeFile, PartRange } from './compose_file';
import { composeSharded, removeOtherLayout } from './publish_sharded';
import { Progress } from './inputs';
import { VERSION } from '../version';
import { pool, REQUESTS_AT_ONCE } from '../store/s3_parts';

export interface FileHash {
  uri: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  mergeflow: string;
  runId: string;
  method: string;
  parameters: Record<string, unknown>;
  dtype: string;
  inputs: { base: FileHash[]; models: Record<string, FileHash[]> };
  /**
   * One file: its parts digest and parts. Sharded: the index's URI, the bytes of all files, a digest over
   * the files (filesDigest), and each file (the shards' parts digests, then the index's plain sha256).
   */
  output: FileHash & {
    digest?: 'sha256-parts' | 'sha256-files';
    parts?: PartRange[];
    files?: (ComposedFile | FileHash)[];
  };
  files: string[];
  config?: unknown;
  createdAt: string;
}

/** The manifest of this run, when a publish already committed it (a retried publish then has nothing to redo). */
async function alreadyPublished(plan: MergePlan): Promise<Manifest | undefined> {
  const store = storeFor(plan.manifestUri);
  if (!(await store.stat(plan.manifestUri))) return undefined;
  const m = (await readJson(plan.manifestUri, () => new Error('unreadable')).catch(() => undefined)) as
    Manifest | undefined;
  if (m?.runId !== plan.runId) return undefined;
  for (const f of m.output.files ?? [m.output]) {
    const st = await storeFor(f.uri).stat(f.uri);
    if (st?.size !== f.bytes) return undefined;
  }
  return m;
}

const plain = (f: FileHash): Committed => ({ uri: f.uri, bytes: f.bytes, sha256: f.sha256 });

export interface PublishedMerge {
  output: Committed;
  manifestUri: string;
  /** A sharded output's files (shards, then the index). */
  files?: Committed[];
}

export async function publishMerge(
  plan: MergePlan,
  parts: readonly Committed[],
  inputHashes: { base: FileHash[]; models: Record<string, FileHash[]> },
  config: unknown,
  progress?: Progress,
): Promise<PublishedMerge> {
  const done = await alreadyPublished(plan);
  if (done) {
    await clearWork(plan, progress);
    return result(done.output, plan.manifestUri);
  }
  const base = await Checkpoint.open(plan.base.uri, plan.base.versions);
  const specs = outputSpecs(plan, base);
  const output: Manifest['output'] = plan.outputFiles
    ? await composeSharded(plan, plan.outputFiles, specs, parts, progress)
    : await composeFile(plan.outputFile, specs, plan.method, parts, progress);
  await removeOtherLayout(plan);
  const files = (output.files ?? [output]).map((f) => basenameUri(f.uri));
  for (const side of plan.copyFromBase) {
    const st = await storeFor(side).stat(side);
    if (!st) continue;
    await putObject(joinUri(plan.outputFolder!, basenameUri(side)), await storeFor(side).readAll(side));
    files.push(basenameUri(side));
  }
  const manifest: Manifest = {
    mergeflow: VERSION,
    runId: plan.runId,
    method: plan.method,
    parameters: plan.params,
    dtype: plan.dtype,
    inputs: inputHashes,
    output,
    files,
    config,
    createdAt: new Date().toISOString(),
  };
  // the manifest is the commit point: once it is there, a retried publish only clears the work prefix
  await putObject(plan.manifestUri, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  await clearWork(plan, progress);
  return result(output, plan.manifestUri);
}

function result(output: Manifest['output'], manifestUri: string): PublishedMerge {
  return { output: plain(output), manifestUri, ...(output.files ? { files: output.files.map(plain) } : {}) };
}

/** Delete the run's work prefix, and any upload a killed writer left unfinished under it. */
export async function clearWork(plan: Pick<MergePlan, 'workPrefix'>, progress?: Progress): Promise<void> {
  const store = storeFor(plan.workPrefix);
  await store.abortUploads(plan.workPrefix);
  const uris = await store.list(plan.workPrefix);
  let done = 0;
  // several at a time: over S3 each delete is a round trip, and an FW run leaves a few per iteration and target
  await pool(uris, REQUESTS_AT_ONCE, async (uri) => {
    await store.delete(uri);
    await progress?.(++done, uris.length, 'clearing work');
  });
  if (store.scheme === 'file') {
    await fs.rm(filePath(plan.workPrefix), { recursive: true, force: true });
  }
}

/** sha256 of every file of a checkpoint (one for a bare .safetensors, each shard of a folder). */
export async function hashCheckpoint(uri: string, progress?: Progress): Promise<FileHash[]> {
  const ck = await Checkpoint.open(uri);
  const total = ck.size;
  let before = 0;
  const out: FileHash[] = [];
  for (const f of ck.files) {
    const sha256 = await sha256Of(f.uri, f.size, undefined, (n) => progress?.(before + n, total, f.uri), f.etag);
    out.push({ uri: f.uri, bytes: f.size, sha256 });
    before += f.size;
  }
  return out;
}
