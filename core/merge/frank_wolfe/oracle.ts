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
 * Scores of every candidate over `tensors` (a shard: any subset of the merged tensor names, in order). g must
 * hold every tensor listed. Candidates are read one after another, tensor by tensor.
 */
export async function scoreCandidates(
  g: Readonly<Record<string, Float32Array>>,
  tensors: readonly string[],
  candidates: readonly TensorSource[],
  hooks: ScoreHooks = {},
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
  for (let m = 0; m < candidates.length; m++) {
    for (let p = 0; p < tensors.length; p++) {
      const theta = await candidates[m].read(tensors[p]);
      accumulateCandidate(s, m, p, g[tensors[p]], theta);
      hooks.onTensor?.(candidates[m].name, tensors[p], theta.length);
    }
  }
  return s;
}
