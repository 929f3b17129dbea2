/**
 * τk = θk − θ0 in float32, tensor by tensor, for AdaMerging's task models: read through the CLIP loader (so a
 * folder, any float dtype and sharded weights all work), checked against θ0's config. Shared by the in-process
 * loop (local_run.ts) and the worker's session (session.ts), so both start from the same bytes.
 */
import { ClipVisionConfig, describeConfig, disposeParams, loadClipVision } from '../../models/clip_vit';
import { ModelError } from '../../models/errors';

/** vectors[k][l]: task k's vector for tensor names[l]; `base[l]` is θ0's tensor names[l]. */
export async function loadTaskVectors(
  models: readonly string[],
  names: readonly string[],
  base: readonly Float32Array[],
  config: ClipVisionConfig,
): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (const uri of models) {
    const m = await loadClipVision(uri);
    try {
      if (JSON.stringify(m.config) !== JSON.stringify(config)) {
        throw new ModelError(
          `${m.uri}: config (${describeConfig(m.config)}) differs from θ0's (${describeConfig(config)})`,
        );
      }
      out.push(
        names.map((n, l) => {
          const v = Float32Array.from(m.params[n].dataSync());
          for (let i = 0; i < v.length; i++) v[i] -= base[l][i];
          return v;
        }),
      );
    } finally {
      disposeParams(m.params);
    }
  }
  return out;
}
