/**
 * Activities for resuming runs and for scheduled configs: write the run record once a run has planned, open a
 * resumed run's committed work (checking its pinned inputs), and resolve `latest_under` checkpoints.
 */
import type { AdamergingConfig, DataFreeConfig } from '../core/config/schema';
import type { AdaPlan } from '../core/merge/adamerging/run_types';
import { adaMergingResume, AdaFound } from '../core/merge/adamerging/resume';
import type { FwPlan } from '../core/merge/frank_wolfe/run_types';
import { frankWolfeResume, FwFound } from '../core/merge/frank_wolfe/resume';
import type { MergePlan } from '../core/pipeline/plan';
import { dataFreeResume } from '../core/pipeline/resume';
import { openResume, recordRun, Resumed } from '../core/resume/support';
import { resolveLatest } from '../core/schedule/latest';

export interface ResumeRequest {
  workPrefix: string;
  /** The run being resumed (named in messages). */
  from: string;
  allowChangedInputs?: boolean;
}

export function createResumeActivities() {
  return {
    async recordMergeRun(plan: MergePlan, config: unknown): Promise<string> {
      const output = plan.outputFolder ?? plan.outputFile;
      return recordRun(dataFreeResume, { runId: plan.runId, workPrefix: plan.workPrefix, output, config, plan });
    },

    async recordAdaRun(plan: AdaPlan, config: unknown): Promise<string> {
      const { runId, workPrefix, output } = plan;
      return recordRun(adaMergingResume, { runId, workPrefix, output, config, plan });
    },

    async recordFwRun(plan: FwPlan, config: unknown): Promise<string> {
      const { runId, workPrefix, output } = plan;
      return recordRun(frankWolfeResume, { runId, workPrefix, output, config, plan });
    },

    async openMergeResume(r: ResumeRequest): Promise<Resumed<MergePlan, Record<string, unknown>>> {
      return openResume(dataFreeResume, r.workPrefix, r.from, r.allowChangedInputs ?? false);
    },

    async openAdaResume(r: ResumeRequest): Promise<Resumed<AdaPlan, AdaFound>> {
      return openResume(adaMergingResume, r.workPrefix, r.from, r.allowChangedInputs ?? false);
    },

    async openFwResume(r: ResumeRequest): Promise<Resumed<FwPlan, FwFound>> {
      return openResume(frankWolfeResume, r.workPrefix, r.from, r.allowChangedInputs ?? false);
    },

    async resolveLatest(config: DataFreeConfig | AdamergingConfig) {
      return resolveLatest(config);
    },
  };
}
