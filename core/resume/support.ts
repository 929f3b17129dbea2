/**
 * Resume, per workflow type. Each resumable workflow type provides a ResumeSupport: which files its run reads
 * (pinned when the run starts, checked before it is resumed) and how to turn the verified ledger of its work
 * prefix into what a resumed run skips. openResume does the rest, the same for every type: read the run record,
 * check the pinned inputs, verify the ledger.
 */
import { storeFor } from '../store';
import { NotFoundError } from '../store/types';
import { verifiedLedger, VerifiedLedger } from './ledger';
import { checkWorkOutside } from './work';
import { checkInputs, pinInputs, readRunRecord, RunRecord, writeRunRecord } from './record';

export interface ResumeSupport<Plan, Found> {
  /** The Temporal workflow type a resumed run starts. */
  workflowType: string;
  /** Every file the run reads (weights, heads, data), as URIs of objects. */
  inputFiles(plan: Plan): Promise<string[]>;
  /** What the run committed, from the verified ledger: the resumed run skips it. */
  findCommitted(plan: Plan, ledger: VerifiedLedger): Found;
}

export interface Resumed<Plan, Found> {
  /** The recorded plan; undefined when inputs changed (allowed): the resumed run plans again and redoes all. */
  plan?: Plan;
  found?: Found;
  /** Inputs that changed since the first run (only with allowChangedInputs). */
  changed: string[];
  /** Ledger records whose objects were gone or altered (redone). */
  rejected: string[];
}

/** Pin the inputs and write the run record (once per work prefix; a resumed run keeps the first). */
export async function recordRun<Plan>(
  support: ResumeSupport<Plan, unknown>,
  r: { runId: string; workPrefix: string; output: string; config: unknown; plan: Plan },
): Promise<string> {
  checkWorkOutside(r.output, r.workPrefix);
  const record: RunRecord<Plan> = {
    workflowType: support.workflowType,
    ...r,
    inputs: await pinInputs(await support.inputFiles(r.plan)),
    createdAt: new Date().toISOString(),
  };
  return writeRunRecord(record);
}

async function clearPrefix(prefix: string): Promise<void> {
  const store = storeFor(prefix);
  for (const uri of await store.list(prefix)) await store.delete(uri);
}

export async function openResume<Plan, Found>(
  support: ResumeSupport<Plan, Found>,
  workPrefix: string,
  resumedRun: string,
  allowChangedInputs: boolean,
): Promise<Resumed<Plan, Found>> {
  const record = await readRunRecord<Plan>(workPrefix);
  if (!record)
    throw new NotFoundError(
      `cannot resume ${resumedRun}: ${workPrefix} holds no run record (the run stopped before planning, or its work was removed); start it again with 'mergeflow run'`,
    );
  const changed = await checkInputs(record, resumedRun, allowChangedInputs);
  if (changed.length) {
    // work made from the old bytes must not mix with new work: drop it all, the run plans again
    await clearPrefix(workPrefix);
    return { changed, rejected: [] };
  }
  const ledger = await verifiedLedger(workPrefix);
  return {
    plan: record.plan,
    found: support.findCommitted(record.plan, ledger),
    changed,
    rejected: ledger.rejected,
  };
}
