/** Assemble the output from the shard parts, write the manifest beside it, then clear the work prefix. */
import { Checkpoint, buildHeader, SafetensorsError } from '../safetensors';
import * as fs from 'node:fs/promises';
import { Committed, joinUri, putObject, storeFor, basenameUri, filePath, sha256Of } from '../store';
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
  output: FileHash;
  files: string[];
  config?: unknown;
  createdAt: string;
}

const COPY_CHUNK = 16 * 1024 * 1024;

export async function publishMerge(
  plan: MergePlan,
  parts: readonly Committed[],
  inputHashes: { base: FileHash[]; models: Record<string, FileHash[]> },
  config: unknown,
  progress?: Progress,
): Promise<{ output: Committed; manifestUri: string }> {
  const base = await Checkpoint.open(plan.base.uri);
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outputDType(t, plan.dtype), shape: t.shape }));
  const { bytes: header, tensors } = buildHeader(specs, { format: 'pt', mergeflow_method: plan.method });
  const dataBytes = tensors.length ? tensors[tensors.length - 1].end : 0;
  const partBytes = parts.reduce((a, p) => a + p.bytes, 0);
  if (partBytes !== dataBytes) {
    throw new SafetensorsError(
      `${plan.outputFile}: shard parts hold ${partBytes} bytes, the header describes ${dataBytes}`,
    );
  }
  const w = await storeFor(plan.outputFile).writer(plan.outputFile);
  let output: Committed;
  try {
    await w.write(header);
    let copied = 0;
    for (const p of parts) {
      const store = storeFor(p.uri);
      for (let off = 0; off < p.bytes; off += COPY_CHUNK) {
        const chunk = await store.read(p.uri, off, Math.min(COPY_CHUNK, p.bytes - off));
        await w.write(chunk);
        copied += chunk.byteLength;
        await progress?.(copied, partBytes);
      }
    }
    output = await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  const files = [basenameUri(plan.outputFile)];
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
    output: { uri: output.uri, bytes: output.bytes, sha256: output.sha256 },
    files,
    config,
    createdAt: new Date().toISOString(),
  };
  await putObject(plan.manifestUri, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  await clearWork(plan);
  return { output, manifestUri: plan.manifestUri };
}

export async function clearWork(plan: Pick<MergePlan, 'workPrefix'>): Promise<void> {
  const store = storeFor(plan.workPrefix);
  for (const uri of await store.list(plan.workPrefix)) await store.delete(uri);
  if (store.scheme === 'file') {
    await fs.rm(filePath(plan.workPrefix), { recursive: true, force: true });
  }
}

/** sha256 of every file of a checkpoint (one for a bare .safetensors, each shard of a folder). */
export async function hashCheckpoint(uri: string): Promise<FileHash[]> {
  const ck = await Checkpoint.open(uri);
  const out: FileHash[] = [];
  for (const f of ck.files) out.push({ uri: f.uri, bytes: f.size, sha256: await sha256Of(f.uri, f.size) });
  return out;
}
