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

/** Header + the parts as one object, composed by the store (S3: server-side copies), never read back here. */
export async function composeFile(
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
