/**
 * The linear minimisation oracle's arithmetic, pure: per candidate m and merged tensor p the three sums that
 * cos(g_p, θ_{m,p}) = ⟨g_p, θ_{m,p}⟩ / (‖g_p‖ ‖θ_{m,p}‖) needs, and the two selections.
 *
 * Scores are small (3 numbers per candidate per tensor, float64) and additive: a shard of the work (any
 * subset of tensors, or an element range of a tensor) produces partial sums, and `mergeScores` adds the
 * shards in the order given, so sharded scoring over workers equals one pass when the order is fixed.
 *
 * Full weights θm are scored, not task vectors (as the reference). A cosine whose norm product is 0 (an
 * all-zero gradient or candidate tensor) is taken as 0, where torch would give NaN.
 */

export interface OracleScores {
  /** Candidate names (M), in pool order. */
  candidates: string[];
  /** Merged tensor names (P), in the model's order: Σp runs in this order. */
  tensors: string[];
  /** ⟨g_p, θ_{m,p}⟩ at [m·P + p]. */
  dot: Float64Array;
  /** ‖θ_{m,p}‖² at [m·P + p]. */
  candSq: Float64Array;
  /** ‖g_p‖² at [p]. */
  gradSq: Float64Array;
}

export function emptyScores(candidates: readonly string[], tensors: readonly string[]): OracleScores {
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c)) throw new Error(`FW oracle: candidate '${c}' is listed twice`);
    seen.add(c);
  }
  const M = candidates.length;
  const P = tensors.length;
  return {
    candidates: [...candidates],
    tensors: [...tensors],
    dot: new Float64Array(M * P),
    candSq: new Float64Array(M * P),
    gradSq: new Float64Array(P),
  };
}

/** Add ‖g_p‖² (once per tensor, or once per element range of it). */
export function accumulateGrad(s: OracleScores, p: number, g: ArrayLike<number>): void {
  let sq = 0;
  for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  s.gradSq[p] += sq;
}

/** Add ⟨g_p, θ_{m,p}⟩ and ‖θ_{m,p}‖² for candidate m (or an element range: g and theta the same range). */
export function accumulateCandidate(
  s: OracleScores,
  m: number,
  p: number,
  g: ArrayLike<number>,
  theta: ArrayLike<number>,
): void {
  if (g.length !== theta.length) {
    throw new Error(
      `FW oracle: candidate '${s.candidates[m]}' tensor '${s.tensors[p]}' has ${theta.length} values, the gradient ${g.length}`,
    );
  }
  let dot = 0;
  let sq = 0;
  for (let i = 0; i < g.length; i++) {
    dot += g[i] * theta[i];
    sq += theta[i] * theta[i];
  }
  const i = m * s.tensors.length + p;
  s.dot[i] += dot;
  s.candSq[i] += sq;
}

/**
 * Sum shard scores into one over `tensors` (the full list, in order): each part's tensors are looked up by
 * name; parts are added in the order given. Every part must list the same candidates in the same order.
 */
export function mergeScores(tensors: readonly string[], parts: readonly OracleScores[]): OracleScores {
  if (parts.length === 0) throw new Error('FW oracle: no scores to merge');
  const out = emptyScores(parts[0].candidates, tensors);
  const col = new Map(tensors.map((n, p) => [n, p]));
  const P = tensors.length;
  for (const part of parts) {
    if (part.candidates.join('\n') !== out.candidates.join('\n'))
      throw new Error('FW oracle: shard scores list different candidates');
    const Q = part.tensors.length;
    part.tensors.forEach((n, q) => {
      const p = col.get(n);
      if (p === undefined) throw new Error(`FW oracle: shard scores a tensor '${n}' that is not merged`);
      out.gradSq[p] += part.gradSq[q];
      for (let m = 0; m < out.candidates.length; m++) {
        out.dot[m * P + p] += part.dot[m * Q + q];
        out.candSq[m * P + p] += part.candSq[m * Q + q];
      }
    });
  }
  return out;
}

/** cos(g_p, θ_{m,p}); 0 when either norm is 0. */
export function cosine(s: OracleScores, m: number, p: number): number {
  const i = m * s.tensors.length + p;
  const den = Math.sqrt(s.gradSq[p]) * Math.sqrt(s.candSq[i]);
  return den > 0 ? s.dot[i] / den : 0;
}

/** Σp cos(g_p, θ_{m,p}) for every candidate, summed in tensor order. */
export function taskScores(s: OracleScores): number[] {
  return s.candidates.map((_, m) => {
    let sum = 0;
    for (let p = 0; p < s.tensors.length; p++) sum += cosine(s, m, p);
    return sum;
  });
}

/** a before b: the lower score, and on an exact tie the candidate whose name sorts first. */
function better(scoreA: number, nameA: string, scoreB: number, nameB: string): boolean {
  return scoreA < scoreB || (scoreA === scoreB && nameA < nameB);
}

export interface TaskSelection {
  /** The chosen candidate's index and name. */
  index: number;
  candidate: string;
  /** Its Σp cos. */
  score: number;
  /** Σp cos of every candidate, pool order (excluded ones included, for the record). */
  scores: number[];
}

/** Task-wise LMO: the candidate with the most negative Σp cos; ties go to the name that sorts first. */
export function selectTaskWise(s: OracleScores, exclude: ReadonlySet<string> = new Set()): TaskSelection {
  const scores = taskScores(s);
  let best = -1;
  scores.forEach((v, m) => {
    if (exclude.has(s.candidates[m])) return;
    if (best < 0 || better(v, s.candidates[m], scores[best], s.candidates[best])) best = m;
  });
  if (best < 0) throw new Error('FW oracle: every candidate is excluded');
  return { index: best, candidate: s.candidates[best], score: scores[best], scores };
}

/**
 * What the layer-wise LMO does on a tensor where no candidate scores negative:
 *  - 'argmin' (default): take the lowest-scoring candidate anyway. This is the LMO over the product of the
 *    per-tensor convex hulls, and what the vision reference code does (its zero target is commented out).
 *  - 'current': keep θt on that tensor (target = θt, so the update leaves it unchanged).
 * The reference LLM code's zero target is not offered: s_p = 0 makes the update θ ← (1 − a)·θ, which shrinks
 * layer-norm gains and every weight of that tensor toward 0, a direction no candidate proposes.
 */
export type LayerFallback = 'argmin' | 'current';

export interface LayerSelection {
  /** Per tensor (in `tensors` order): the chosen candidate's index, or -1 for "keep θt". */
  choice: number[];
  /** Per tensor: the chosen candidate's name, or null for θt. */
  candidate: (string | null)[];
  /** Per tensor: the chosen cosine (0 where θt is kept). */
  cos: number[];
  /** Σp of `cos`. */
  score: number;
  /** Tensors that took the fallback (no eligible candidate scored negative). */
  fallbacks: number;
}

/**
 * Layer-wise LMO: per tensor the candidate with the most negative cos (ties to the name that sorts first),
 * skipping the names in exclude[p] when given; a composite.
 */
export function selectLayerWise(
  s: OracleScores,
  opts: { fallback?: LayerFallback; exclude?: readonly (ReadonlySet<string> | undefined)[] } = {},
): LayerSelection {
  const fallback = opts.fallback ?? 'argmin';
  const out: LayerSelection = { choice: [], candidate: [], cos: [], score: 0, fallbacks: 0 };
  s.tensors.forEach((name, p) => {
    const ex = opts.exclude?.[p];
    let best = -1;
    let bestCos = 0;
    s.candidates.forEach((c, m) => {
      if (ex?.has(c)) return;
      const v = cosine(s, m, p);
      if (best < 0 || better(v, c, bestCos, s.candidates[best])) {
        best = m;
        bestCos = v;
      }
    });
    if (best < 0) throw new Error(`FW oracle: every candidate is excluded for tensor '${name}'`);
    if (!(bestCos < 0)) out.fallbacks++;
    if (!(bestCos < 0) && fallback === 'current') {
      out.choice.push(-1);
      out.candidate.push(null);
      out.cos.push(0);
      return;
    }
    out.choice.push(best);
    out.candidate.push(s.candidates[best]);
    out.cos.push(bestCos);
    out.score += bestCos;
  });
  return out;
}
