/** Streaming safetensors writer: header first, then each tensor's bytes in order; published atomically. */
import { Committed, storeFor } from '../store';
import { DType } from './dtype';
import { buildHeader, SafetensorsError, TensorInfo } from './header';

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

/**
 * Write a safetensors object at `uri`. `produce` is called once per tensor, in order, and must return exactly
 * that tensor's bytes. Nothing appears under `uri` unless every tensor was written.
 */
export async function writeSafetensors(
  uri: string,
  specs: readonly TensorSpec[],
  produce: (t: TensorInfo, index: number) => Promise<Uint8Array> | Uint8Array,
  metadata?: Record<string, string>,
): Promise<Committed> {
  const { bytes, tensors } = buildHeader(specs, metadata);
  const w = await storeFor(uri).writer(uri);
  try {
    await w.write(bytes);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = await produce(t, i);
      if (data.byteLength !== t.end - t.begin) {
        throw new SafetensorsError(
          `${uri}: tensor '${t.name}' produced ${data.byteLength} bytes, expected ${t.end - t.begin}`,
        );
      }
      await w.write(data);
    }
    return await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** Convenience for small in-memory tensors. */
export async function writeTensors(
  uri: string,
  tensors: { name: string; dtype: DType; shape: readonly number[]; data: Uint8Array }[],
  metadata?: Record<string, string>,
): Promise<Committed> {
  return writeSafetensors(uri, tensors, (_t, i) => tensors[i].data, metadata);
}
