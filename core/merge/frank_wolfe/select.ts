/**
 * The workflow's pick, pure and deterministic: the oracle shards' sums are added in shard order (mergeScores),
 * then FW-Hard takes the task-wise or layer-wise LMO under g = Σj g_j, and FW-Soft one pick per target in
 * target order, each from the pool minus what was already picked this iteration (as softSelect in fw_soft.ts).
 * Ties go to the candidate whose name sorts first (oracle_scores.ts). No I/O and no tensors: the workflow runs it.
 */
import type { FrankWolfeParams } from './params';
import { mergeScores, OracleScores, selectLayerWise, selectTaskWise } from './oracle_scores';
import type { FwIterationRecord, FwPick, FwScoresJson } from './run_types';

function fromJson(s: FwScoresJson): OracleScores {
  return {
    candidates: s.candidates,
    tensors: s.tensors,
    dot: Float64Array.from(s.dot),
    candSq: Float64Array.from(s.candSq),
    gradSq: Float64Array.from(s.gradSq),
  };
}

/** shards[s][k]: shard s's scores under gradient set k → one OracleScores per set over every merged tensor. */
export function combineShards(tensors: readonly string[], shards: readonly FwScoresJson[][]): OracleScores[] {
  const sets = shards[0]?.length ?? 0;
  return Array.from({ length: sets }, (_, k) =>
    mergeScores(
      tensors,
      shards.map((sh) => fromJson(sh[k])),
    ),
  );
}

export interface Picked {
  picks: FwPick[];
  record: FwIterationRecord['picks'];
}

type PickParams = Pick<FrankWolfeParams, 'variant' | 'oracle' | 'layer_fallback'>;

/** The iteration's picks from the combined scores (hard: one set; soft: one per target). */
export function pickCandidates(p: PickParams, targets: readonly string[], scores: readonly OracleScores[]): Picked {
  const P = scores[0].tensors.length;
  const names = scores[0].candidates;
  const name = (m: number) => (m < 0 ? null : names[m]);
  if (p.variant === 'hard') {
    if (p.oracle === 'task') {
      const sel = selectTaskWise(scores[0]);
      return {
        picks: [{ target: 'all', choice: Array<number>(P).fill(sel.index) }],
        record: [{ target: 'all', candidate: sel.candidate }],
      };
    }
    const sel = selectLayerWise(scores[0], { fallback: p.layer_fallback });
    return {
      picks: [{ target: 'all', choice: sel.choice }],
      record: [{ target: 'all', perTensor: sel.choice.map(name) }],
    };
  }
  const picks: FwPick[] = [];
  const record: FwIterationRecord['picks'] = [];
  const taken = new Set<string>();
  const perTensor = scores[0].tensors.map(() => new Set<string>());
  for (let j = 0; j < targets.length && picks.length < names.length; j++) {
    if (p.oracle === 'task') {
      const sel = selectTaskWise(scores[j], taken);
      taken.add(sel.candidate);
      picks.push({ target: targets[j], choice: Array<number>(P).fill(sel.index) });
      record.push({ target: targets[j], candidate: sel.candidate });
    } else {
      const sel = selectLayerWise(scores[j], { fallback: p.layer_fallback, exclude: perTensor });
      sel.candidate.forEach((c, q) => c !== null && perTensor[q].add(c));
      picks.push({ target: targets[j], choice: sel.choice });
      record.push({ target: targets[j], perTensor: sel.choice.map(name) });
    }
  }
  return { picks, record };
}
