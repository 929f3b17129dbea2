/**
 * The steps of a merge, written once: plan → the method's declared passes (each a map over
 * shards whose results go to the store, then a small reduce) → its coefficient table, for linear methods → merge
 * the shards (each hashes what it reads of the inputs) → publish. The workflow runs them with activities (shards fanned out at once); the in-process runner
 * (tests, bench, report) calls the same core functions one shard at a time. This module only orchestrates:
 * it imports types alone, so the workflow can use it and stay deterministic.
 *
 * Resuming: each unit's result is recorded in the run's ledger under a key (commitKey). A resumed run passes the
 * verified ledger (MergeResume); every unit found there is reused as it is, and only the rest runs.
 */
import type { MergeConfig } from '../config/schema';
import type { PassState } from '../merge/method';
import type { Committed } from '../store/types';
import type { MergePlan } from './plan';
import type { FileHash } from './publish';
import type { ShardPart } from './merge_shard';

export type MergeStep =
  { kind: 'pass'; pass: string; phase: string } | { kind: 'coefficients' } | { kind: 'merge' } | { kind: 'publish' };

/** The steps after planning, in order, as the plan's method declares them. */
export function mergeSteps(plan: MergePlan): MergeStep[] {
  return [
    ...plan.passes.map((p): MergeStep => ({ kind: 'pass', pass: p.name, phase: p.phase })),
    ...(plan.kernel === 'linear' ? [{ kind: 'coefficients' } as const] : []),
    { kind: 'merge' },
    { kind: 'publish' },
  ];
}

/** Units of progress: one for planning and publishing each, one per shard of every pass and of the merge. */
export function totalUnits(plan: MergePlan): number {
  const perStep = { pass: plan.shards.length, coefficients: 0, merge: plan.shards.length, publish: 1 };
  return 1 + mergeSteps(plan).reduce((n, s) => n + perStep[s.kind], 0);
}

/** Ledger keys of a merge's units: each pass's map per shard, the coefficient table, each part (with its input hashes). */
export const commitKey = {
  pass: (pass: string, shard: number): string => `pass-${pass}-${shard}`,
  coefficients: (): string => 'coefficients',
  part: (shard: number): string => `part-${shard}`,
};

/** What a resumed merge starts from: the first run's plan and its verified committed units, by ledger key. */
export interface MergeResume {
  plan: MergePlan;
  committed: Record<string, unknown>;
}

export interface InputHashes {
  base: FileHash[];
  models: Record<string, FileHash[]>;
}

export interface Published {
  output: Committed;
  manifestUri: string;
  /** A sharded output's files (the shards, then the index); `output` then names the index. */
  files?: Committed[];
}

/** The work a merge's steps call for. Arguments and results are small plain JSON (they travel in payloads). */
export interface MergeSteps {
  planMerge(config: MergeConfig, runId: string): Promise<MergePlan>;
  /** A pass's map over one shard; returns the URI of the saved result. */
  mapShard(plan: MergePlan, pass: string, shard: number, state: PassState): Promise<string>;
  reducePass(plan: MergePlan, pass: string, uris: string[], state: PassState): Promise<PassState>;
  /** Writes a linear method's coefficient table; returns its URI. */
  writeCoefficients(plan: MergePlan, state: PassState): Promise<string>;
  /** Merges one shard; the part also carries the sha256 of what the shard read of each input file. */
  mergeShard(plan: MergePlan, shard: number, state: PassState, coefficients?: string): Promise<ShardPart>;
  /** Publishes the parts; the manifest's input hashes are combined from the parts' reads. */
  publishMerge(plan: MergePlan, parts: ShardPart[], config: MergeConfig): Promise<Published>;
}

export interface MergeExecutor extends MergeSteps {
  /** Run independent units of work (one per shard or input): all at once, or one after another. */
  all<T>(work: readonly (() => Promise<T>)[]): Promise<T[]>;
}

export interface MergeHooks {
  planned?(plan: MergePlan): void;
  /** A new phase starts (the same phase may be announced again; ignore repeats). */
  phase?(phase: string): void;
  /** One unit of totalUnits(plan) is done. */
  unit?(): void;
}

export interface DrivenMerge extends Published {
  plan: MergePlan;
  /** The state the passes reduced to (TIES: thresholds, majoritySign). */
  state: PassState;
  /** Units taken from the ledger instead of run (a resumed merge), by kind: pass, coefficients, part. */
  reused: Record<string, number>;
}

export async function driveMerge(
  config: MergeConfig,
  runId: string,
  exec: MergeExecutor,
  hooks: MergeHooks = {},
  resume?: MergeResume,
): Promise<DrivenMerge> {
  const counted = <T>(p: Promise<T>): Promise<T> =>
    p.then((v) => {
      hooks.unit?.();
      return v;
    });
  const reused: Record<string, number> = { pass: 0, coefficients: 0, part: 0 };
  /** The unit's recorded result when the ledger has it; otherwise run it. */
  const unit = <T>(kind: string, key: string, run: () => Promise<T>): Promise<T> => {
    if (resume && key in resume.committed) {
      reused[kind]++;
      return Promise.resolve(resume.committed[key] as T);
    }
    return run();
  };
  const plan = resume
    ? await counted(Promise.resolve({ ...resume.plan, runId }))
    : await counted(exec.planMerge(config, runId));
  hooks.planned?.(plan);
  const shards = plan.shards.map((s) => s.index);
  let state: PassState = {};
  let coefficients: string | undefined;
  let parts: ShardPart[] = [];
  let published: Published | undefined;
  for (const step of mergeSteps(plan)) {
    switch (step.kind) {
      case 'pass': {
        hooks.phase?.(step.phase);
        const before = state;
        const uris = await exec.all(
          shards.map(
            (s) => () =>
              counted(unit('pass', commitKey.pass(step.pass, s), () => exec.mapShard(plan, step.pass, s, before))),
          ),
        );
        state = await exec.reducePass(plan, step.pass, uris, before);
        break;
      }
      case 'coefficients':
        hooks.phase?.('merging');
        coefficients = await unit('coefficients', commitKey.coefficients(), () => exec.writeCoefficients(plan, state));
        break;
      case 'merge': {
        hooks.phase?.('merging');
        const final = state;
        parts = await exec.all(
          shards.map(
            (s) => () => counted(unit('part', commitKey.part(s), () => exec.mergeShard(plan, s, final, coefficients))),
          ),
        );
        break;
      }
      case 'publish':
        hooks.phase?.('publishing');
        published = await counted(exec.publishMerge(plan, parts, config));
        break;
    }
  }
  return { plan, state, reused, ...published! };
}
