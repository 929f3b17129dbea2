/**
 * The optimiser state as a safetensors object: `params`, `m`, `v` as F64 tensors of the state's shape, and the
 * step and random-stream cursor (plus any caller metadata) in the header's metadata. Written atomically.
 */
import { Committed } from '../store';
import { fromFloat64, SafetensorsError, SafetensorsFile, toFloat64, writeTensors } from '../safetensors';
import { AdamState } from './adam';

const FORMAT = 'mergeflow-adam-state';
const TENSORS = ['params', 'm', 'v'] as const;

export async function saveAdamState(
  uri: string,
  state: AdamState,
  metadata: Record<string, string> = {},
): Promise<Committed> {
  return writeTensors(
    uri,
    TENSORS.map((name) => ({ name, dtype: 'F64' as const, shape: state.shape, data: fromFloat64(state[name]) })),
    { ...metadata, format: FORMAT, step: String(state.step), rng_cursor: String(state.rngCursor) },
  );
}

function count(file: SafetensorsFile, key: string): number {
  const raw = file.header.metadata[key];
  const n = Number(raw);
  if (raw === undefined || !Number.isSafeInteger(n) || n < 0)
    throw new SafetensorsError(`${file.uri}: metadata '${key}' must be a non-negative integer, got ${raw}`);
  return n;
}

/** Read a saved state; also returns the caller metadata it was saved with. */
export async function loadAdamState(uri: string): Promise<{ state: AdamState; metadata: Record<string, string> }> {
  const file = await SafetensorsFile.open(uri);
  const { format, step: _s, rng_cursor: _r, ...metadata } = file.header.metadata;
  if (format !== FORMAT) throw new SafetensorsError(`${uri}: not an optimiser state (metadata format is ${format})`);
  const shape = file.info('params').shape;
  const read = async (name: (typeof TENSORS)[number]) => {
    const t = file.info(name);
    if (t.shape.join(',') !== shape.join(','))
      throw new SafetensorsError(`${uri}: tensor '${name}' has shape [${t.shape}], params has [${shape}]`);
    return toFloat64(await file.readBytes(name), t.dtype);
  };
  const [params, m, v] = await Promise.all(TENSORS.map(read));
  return { state: { params, m, v, step: count(file, 'step'), rngCursor: count(file, 'rng_cursor'), shape }, metadata };
}
