/** Assemble the output from the shard parts, write the manifest beside it, then clear the work prefix. */
import { Checkpoint, buildHeader, SafetensorsError } from '../safetensors';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { Committed, joinUri, putObject, readJson, storeFor, basenameUri, filePath, sha256Of } from '../store';
import { MergePlan, outputDType } from './plan';
import { Progress } from './inputs';
import { VERSION } from '../version';

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
  output: FileHash & { digest?: 'sha256-parts'; parts?: { offset: number; bytes: number; sha256: string }[] };
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

/** The manifest of this run, when a publish already committed it (a retried publish then has nothing to redo). */
async function alreadyPublished(plan: MergePlan): Promise<Manifest | undefined> {
  const store = storeFor(plan.manifestUri);
  if (!(await store.stat(plan.manifestUri))) return undefined;
  const m = (await readJson(plan.manifestUri, () => new Error('unreadable')).catch(() => undefined)) as
    Manifest | undefined;
  if (m?.runId !== plan.runId) return undefined;
  const out = await storeFor(m.output.uri).stat(m.output.uri);
  return out?.size === m.output.bytes ? m : undefined;
}

export async function publishMerge(
  plan: MergePlan,
  parts: readonly Committed[],
  inputHashes: { base: FileHash[]; models: Record<string, FileHash[]> },
  config: unknown,
  progress?: Progress,
): Promise<{ output: Committed; manifestUri: string }> {
  const done = await alreadyPublished(plan);
  if (done) {
    await clearWork(plan, progress);
    return {
      output: { uri: done.output.uri, bytes: done.output.bytes, sha256: done.output.sha256 },
      manifestUri: plan.manifestUri,
    };
  }
  const base = await Checkpoint.open(plan.base.uri, plan.base.versions);
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
  const { bytes: header, tensors } = buildHeader(specs, { format: 'pt', mergeflow_method: plan.method });
  const dataBytes = tensors.length ? tensors[tensors.length - 1].end : 0;
  const partBytes = parts.reduce((a, p) => a + p.bytes, 0);
  if (partBytes !== dataBytes) {
    throw new SafetensorsError(
      `${plan.outputFile}: shard parts hold ${partBytes} bytes, the header describes ${dataBytes}`,
    );
  }
  // the parts are placed by the store (S3: server-side copies), never read back through this process
  const bytes = await storeFor(plan.outputFile).compose(
    plan.outputFile,
    header,
    parts.map((p) => ({ uri: p.uri, offset: 0, length: p.bytes })),
    { progress },
  );
  const output: Committed = { uri: plan.outputFile, bytes, sha256: partsDigest(header, parts) };
  const files = [basenameUri(plan.outputFile)];
  for (const side of plan.copyFromBase) {
    const st = await storeFor(side).stat(side);
    if (!st) continue;
    await putObject(joinUri(plan.outputFolder!, basenameUri(side)), await storeFor(side).readAll(side));
    files.push(basenameUri(side));
  }
  let offset = header.byteLength;
  const manifest: Manifest = {
    mergeflow: VERSION,
    runId: plan.runId,
    method: plan.method,
    parameters: plan.params,
    dtype: plan.dtype,
    inputs: inputHashes,
    output: {
      uri: output.uri,
      bytes: output.bytes,
      sha256: output.sha256,
      digest: 'sha256-parts',
      parts: [
        { offset: 0, bytes: header.byteLength, sha256: createHash('sha256').update(header).digest('hex') },
        ...parts.map((p) => {
          const r = { offset, bytes: p.bytes, sha256: p.sha256 };
          offset += p.bytes;
          return r;
        }),
      ],
    },
    files,
    config,
    createdAt: new Date().toISOString(),
  };
  // the manifest is the commit point: once it is there, a retried publish only clears the work prefix
  await putObject(plan.manifestUri, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  await clearWork(plan, progress);
  return { output, manifestUri: plan.manifestUri };
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
