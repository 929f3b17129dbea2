/** One weights file composed in the store from a safetensors header and the shard parts that follow it. */
import { createHash } from 'node:crypto';
import { buildHeader, SafetensorsError, TensorSpec } from '../safetensors';
import { Committed, storeFor } from '../store';

/** Where each byte range of a composed file came from: the header, then the shard parts, with their sha256. */
export interface PartRange {
  offset: number;
  bytes: number;
  sha256: string;
}

/** One published weights file: its digest is over its parts (see partsDigest). */
export type ComposedFile = Committed & { digest: 'sha256-parts'; parts: PartRange[] };

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

/** The header of an output file holding `specs`, as published (shards place their bytes after it). */
export function outputHeader(specs: readonly TensorSpec[], method: string): ReturnType<typeof buildHeader> {
  return buildHeader(specs, { format: 'pt', mergeflow_method: method });
}

/** True when the parts fill a staged file in place, back to back from the end of the header. */
function stagedInPlace(parts: readonly Committed[], headerBytes: number): boolean {
  let at = headerBytes;
  for (const p of parts) {
    if (p.offset !== at || p.uri !== parts[0].uri) return false;
    at += p.bytes;
  }
  return parts.length > 0;
}

/**
 * Header + the parts as one object, never read back here: parts that fill a staged file in place are published
 * by writing the header and linking the file (file store); whole parts are composed by the store (S3:
 * server-side copies).
 */
export async function composeFile(
  uri: string,
  specs: TensorSpec[],
  method: string,
  parts: readonly Committed[],
  progress?: (done: number, total: number) => void | Promise<void>,
): Promise<ComposedFile> {
  const { bytes: header, tensors } = outputHeader(specs, method);
  const dataBytes = tensors.length ? tensors[tensors.length - 1].end : 0;
  const partBytes = parts.reduce((a, p) => a + p.bytes, 0);
  if (partBytes !== dataBytes) {
    throw new SafetensorsError(`${uri}: shard parts hold ${partBytes} bytes, the header describes ${dataBytes}`);
  }
  const store = storeFor(uri);
  const total = header.byteLength + partBytes;
  let bytes: number;
  if (store.publishStaged && stagedInPlace(parts, header.byteLength)) {
    bytes = await store.publishStaged(uri, parts[0].uri, header, total);
    await progress?.(bytes, total);
  } else {
    const segments = parts.map((p) => ({ uri: p.uri, offset: p.offset ?? 0, length: p.bytes }));
    bytes = await store.compose(uri, header, segments, { progress });
  }
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
