/**
 * Small synthetic checkpoint families (a base and fine-tuned variants), reproducible from a seed.
 * Used by the demo, tests and benchmarks where real weights are not needed.
 */
import { rngFor, normalish } from './data/rng';
import { DType, fromFloat32, writeTensors } from './safetensors';
import { joinUri, normalizeUri } from './store/uri';

export interface SyntheticOptions {
  seed?: number;
  models?: number;
  /** Width of the square layers. */
  dim?: number;
  layers?: number;
  /** dtype of the layer weights (the embedding is BF16 and position ids I64 whatever this says). */
  dtype?: DType;
}

interface Spec {
  name: string;
  shape: number[];
  dtype: DType;
}

export function syntheticSpecs(o: Required<Pick<SyntheticOptions, 'dim' | 'layers' | 'dtype'>>): Spec[] {
  const specs: Spec[] = [{ name: 'embed.weight', shape: [2 * o.dim, o.dim], dtype: 'BF16' }];
  for (let l = 0; l < o.layers; l++) {
    specs.push({ name: `layers.${l}.weight`, shape: [o.dim, o.dim], dtype: o.dtype });
    specs.push({ name: `layers.${l}.bias`, shape: [o.dim], dtype: 'F32' });
  }
  specs.push({ name: 'position_ids', shape: [1, 16], dtype: 'I64' });
  return specs;
}

function tensorBytes(spec: Spec, values: (i: number) => number): Uint8Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === 'I64') {
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) out[i] = BigInt(i);
    return new Uint8Array(out.buffer);
  }
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = values(i);
  return fromFloat32(f, spec.dtype);
}

/** Writes base.safetensors and model-<k>.safetensors under `prefix`; returns their URIs. */
export async function writeSyntheticCheckpoints(
  prefix: string,
  opts: SyntheticOptions = {},
): Promise<{ base: string; models: { name: string; checkpoint: string }[] }> {
  prefix = normalizeUri(prefix);
  const o = { seed: 0, models: 3, dim: 64, layers: 4, dtype: 'F32' as DType, ...opts };
  const specs = syntheticSpecs(o);
  const baseValues = specs.map((s) => {
    const rng = rngFor(o.seed, 'base', s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    return Float32Array.from({ length: n }, () => 0.02 * normalish(rng));
  });
  const base = joinUri(prefix, 'base.safetensors');
  await writeTensors(
    base,
    specs.map((s, j) => ({ ...s, data: tensorBytes(s, (i) => baseValues[j][i]) })),
  );
  const models: { name: string; checkpoint: string }[] = [];
  for (let k = 0; k < o.models; k++) {
    const uri = joinUri(prefix, `model-${k}.safetensors`);
    await writeTensors(
      uri,
      specs.map((s, j) => {
        const rng = rngFor(o.seed, 'task', k, s.name);
        // A task vector touching ~half the entries, of varied magnitude: gives TIES something to trim.
        return {
          ...s,
          data: tensorBytes(
            s,
            (i) => baseValues[j][i] + (rng() < 0.5 ? 0.01 * normalish(rng) : 0.001 * normalish(rng)),
          ),
        };
      }),
    );
    models.push({ name: `task${k}`, checkpoint: uri });
  }
  return { base, models };
}
