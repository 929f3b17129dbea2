/**
 * Which unlabeled rows of a task's test split AdaMerging reads at each optimiser step, as a pure function of
 * (run seed, task, step): a retried step or an epoch resumed at any step reads exactly the rows the first
 * try read, without replaying the steps before it.
 *
 * The task's rows are walked as one endless stream, epoch after epoch, each epoch a fresh seeded permutation
 * of 0..n−1 (as core/suite/train's rowStream does). Step t takes positions [t·R, (t+1)·R) of that stream,
 * R = batchSize × batchesPerTask, so position p is row perm_e[p mod n] of epoch e = floor(p / n). A step
 * needs only the one or few epochs its positions fall in; BatchRowCursor keeps the last one computed.
 */
import { permutation, rngFor } from '../../data/rng';

export interface BatchPlan {
  /** Run seed. */
  seed: number;
  /** Rows in the task's unlabeled split. */
  rows: number;
  batchSize: number;
  batchesPerTask: number;
}

/** Labels that name the row stream of one task: independent of every other seeded stream. */
const PURPOSE = 'adamerging-rows';

function checkPlan(p: BatchPlan): void {
  for (const k of ['rows', 'batchSize', 'batchesPerTask'] as const) {
    if (!Number.isSafeInteger(p[k]) || p[k] <= 0)
      throw new Error(`AdaMerging batches: ${k} must be a positive integer, got ${p[k]}`);
  }
  if (!Number.isSafeInteger(p.seed)) throw new Error(`AdaMerging batches: seed must be an integer, got ${p.seed}`);
}

/** The permutation of epoch e of a task's rows. */
export function epochOrder(seed: number, task: string | number, rows: number, epoch: number): Int32Array {
  return permutation(rows, rngFor(seed, PURPOSE, task, 'epoch', epoch));
}

/** Computes step rows, caching the permutation of the last epoch it touched (steps may come in any order). */
export class BatchRowCursor {
  private epoch = -1;
  private perm: Int32Array | undefined;

  constructor(
    readonly plan: BatchPlan,
    readonly task: string | number,
  ) {
    checkPlan(plan);
  }

  private order(e: number): Int32Array {
    if (e !== this.epoch || !this.perm) {
      this.perm = epochOrder(this.plan.seed, this.task, this.plan.rows, e);
      this.epoch = e;
    }
    return this.perm;
  }

  /** The rows of step `step`, split into batchesPerTask batches of batchSize rows. */
  batches(step: number): Int32Array[] {
    if (!Number.isSafeInteger(step) || step < 0)
      throw new Error(`AdaMerging batches: step must be a non-negative integer, got ${step}`);
    const { rows: n, batchSize: B, batchesPerTask: m } = this.plan;
    const out: Int32Array[] = [];
    let p = step * B * m;
    for (let b = 0; b < m; b++) {
      const rows = new Int32Array(B);
      for (let i = 0; i < B; i++, p++) rows[i] = this.order(Math.floor(p / n))[p % n];
      out.push(rows);
    }
    return out;
  }
}

/** The rows of step `step` for `task`, computed fresh. */
export function stepBatches(plan: BatchPlan, task: string | number, step: number): Int32Array[] {
  return new BatchRowCursor(plan, task).batches(step);
}
