/**
 * The streaming linear minimisation oracle: candidates are read tensor by tensor from the store and only
 * their scores are kept. A caller holds g (every merged tensor) and one candidate tensor at a time, so
 * memory does not grow with the pool. The arithmetic and the selections are in oracle_scores.ts.
 *
 * Sharding: scoreCandidates over a subset of the tensor names is one shard's work; mergeScores adds the
 * shards in a fixed order (the partial sums are float64 and additive).
 */
import { Checkpoint } from '../../safetensors';
import { normalizeUri } from '../../store';
import { accumulateCandidate, accumulateGrad, emptyScores, OracleScores } from './oracle_scores';

/** A model whose tensors are read one at a time, by name. */
export interface TensorSource {
  name: string;
  read(tensor: string): Promise<Float32Array>;
}

/** A checkpoint in the store (file://, s3://, a plain path; a folder or a .safetensors file), opened lazily. */
export function checkpointSource(name: string, uri: string): TensorSource {
  let ck: Promise<Checkpoint> | undefined;
  return {
    name,
    read(tensor) {
      ck ??= Checkpoint.open(normalizeUri(uri));
      return ck.then((c) => c.readFloat32(tensor));
    },
  };
}

/** A model held in memory (the FW-Hard start, a test's candidates). */
export function memorySource(name: string, values: Readonly<Record<string, Float32Array>>): TensorSource {
  return {
    name,
    read(tensor) {
      const v = values[tensor];
      if (!v) return Promise.reject(new Error(`FW oracle: candidate '${name}' has no tensor '${tensor}'`));
      return Promise.resolve(v);
    },
  };
}

export interface ScoreHooks {
  /** Called after each candidate tensor is scored (tests count the reads). */
  onTensor?: (candidate: string, tensor: string, values: number) => void;
}

/**
 * `oracle_basis: task_vectors`: a candidate tensor minus the base tensor (τm = θm − θ0; the base tensor read once
 * per tensor name). ⟨g, θm⟩ and ⟨g, τm⟩ differ by the same ⟨g, θ0⟩ for every candidate, so the unnormalised LMO
 * picks the same model either way; the cosine's normalisation does not: with ‖τm‖ ≪ ‖θ0‖ every cos(g, θm) is
 * nearly cos(g, θ0). The result is one buffer per tensor, reused for the next candidate: score it before the next
 * call.
 */
export function minusBase(base: TensorSource): (tensor: string, theta: Float32Array) => Promise<Float32Array> {
  let cached: { tensor: string; values: Promise<Float32Array>; out?: Float32Array } | undefined;
  return async (tensor, theta) => {
    if (cached?.tensor !== tensor) cached = { tensor, values: base.read(tensor) };
    const b = await cached.values;
    if (b.length !== theta.length)
      throw new Error(`FW oracle: tensor '${tensor}' has ${theta.length} values, the base ${b.length}`);
    const out = (cached.out ??= new Float32Array(theta.length));
    for (let i = 0; i < out.length; i++) out[i] = theta[i] - b[i];
    return out;
  };
}

/**
 * Scores of every candidate over `tensors` (a shard: any subset of the merged tensor names, in order). g must
 * hold every tensor listed. Tensor by tensor, each candidate's tensor is read in turn (and, with `base`, the
 * candidate is scored as its task vector against it).
 */
export async function scoreCandidates(
  g: Readonly<Record<string, Float32Array>>,
  tensors: readonly string[],
  candidates: readonly TensorSource[],
  hooks: ScoreHooks = {},
  base?: TensorSource,
): Promise<OracleScores> {
  const s = emptyScores(
    candidates.map((c) => c.name),
    tensors,
  );
  tensors.forEach((n, p) => {
    const gp = g[n];
    if (!gp) throw new Error(`FW oracle: no gradient for tensor '${n}'`);
    accumulateGrad(s, p, gp);
  });
  const vector = base ? minusBase(base) : undefined;
  for (let p = 0; p < tensors.length; p++) {
    for (let m = 0; m < candidates.length; m++) {
      const theta = await candidates[m].read(tensors[p]);
      accumulateCandidate(s, m, p, g[tensors[p]], vector ? await vector(tensors[p], theta) : theta);
      hooks.onTensor?.(candidates[m].name, tensors[p], theta.length);
    }
  }
  return s;
}
