/** Assemble the output from the shard parts, write the manifest beside it, then clear the work prefix. */
import { Checkpoint, buildHeader, SafetensorsError, TensorSpec } from '../safetensors';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { Committed, joinUri, putObject, readJson, storeFor, basenameUri, filePath, sha256Of } from '../store';
import { pool } from '../store/s3_parts';
import { MergePlan, outputDType } from './plan';
import { INDEX_FILE, indexJson, isShardFileName, OutputFilePlan, shardsOf, SINGLE_FILE } from './output_shards';
import { Progress } from './inputs';
import { VERSION } from '../version';

export interface FileHash {
  uri: string;
  bytes: number;
  sha256: string;
}

/** Where each byte range of a composed file came from: the header, then the shard parts, with their sha256. */
export interface PartRange {
  offset: number;
  bytes: number;
  sha256: string;
}

/** One published weights file: its digest is over its parts (see partsDigest). */
export type ComposedFile = FileHash & { digest: 'sha256-parts'; parts: PartRange[] };

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

/**
 * The output's digest without reading it back: sha256 over the header's sha256 and each part's sha256 (with byte
 * counts), in file order. Byte-identical outputs have equal digests; `parts` in the manifest lets anyone check it
 * with ranged reads.
 */
export function partsDigest(header: Uint8Array, parts: readonly { bytes: number; sha256: string }[]): string {
  const h = createHash('sha256').update('mergeflow sha256-parts v1\n');
  h.update(`${createHash('sha256').update(header).digest('hex')} ${header.byteLength}\n`);
  for (const p of parts) h.update(`${p.sha256} ${p.bytes}\n`);
  return h.digest('hex');
}

/** A sharded output's digest: sha256 over each file's name, digest and size, in order (the index last). */
export function filesDigest(files: readonly FileHash[]): string {
  const h = createHash('sha256').update('mergeflow sha256-files v1\n');
  for (const f of files) h.update(`${basenameUri(f.uri)} ${f.sha256} ${f.bytes}\n`);
  return h.digest('hex');
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

/** Header + the parts as one object, composed by the store (S3: server-side copies), never read back here. */
async function composeFile(
  uri: string,
  specs: TensorSpec[],
  method: string,
  parts: readonly Committed[],
  progress?: (done: number, total: number) => void | Promise<void>,
): Promise<ComposedFile> {
  const { bytes: header, tensors } = buildHeader(specs, { format: 'pt', mergeflow_method: method });
  const dataBytes = tensors.length ? tensors[tensors.length - 1].end : 0;
  const partBytes = parts.reduce((a, p) => a + p.bytes, 0);
  if (partBytes !== dataBytes) {
    throw new SafetensorsError(`${uri}: shard parts hold ${partBytes} bytes, the header describes ${dataBytes}`);
  }
  const bytes = await storeFor(uri).compose(
    uri,
    header,
    parts.map((p) => ({ uri: p.uri, offset: 0, length: p.bytes })),
    { progress },
  );
  let offset = header.byteLength;
  return {
    uri,
    bytes,
    sha256: partsDigest(header, parts),
    digest: 'sha256-parts',
    parts: [
      { offset: 0, bytes: header.byteLength, sha256: createHash('sha256').update(header).digest('hex') },
      ...parts.map((p) => {
        const r = { offset, bytes: p.bytes, sha256: p.sha256 };
        offset += p.bytes;
        return r;
      }),
    ],
  };
}

/** Shard files composed at once (each is itself a multipart upload of a few parts at a time on S3). */
const FILES_AT_ONCE = 4;

/** The shard files (whole parts each), then the index: readers find a checkpoint only once the index is there. */
async function composeSharded(
  plan: MergePlan,
  files: readonly OutputFilePlan[],
  specs: TensorSpec[],
  parts: readonly Committed[],
  progress?: Progress,
): Promise<Manifest['output']> {
  const folder = plan.outputFolder!;
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
async function removeOtherLayout(plan: MergePlan): Promise<void> {
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
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
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
  for (let i = 0; i < uris.length; i++) {
    await store.delete(uris[i]);
    await progress?.(i + 1, uris.length, 'clearing work');
  }
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
