/** Resume support of data-free merges (the dataFreeMerge workflow): its inputs and its committed units. */
import { Checkpoint } from '../safetensors';
import { ResumeSupport } from '../resume/support';
import { MergeResume } from './driver';
import { MergePlan } from './plan';

export const dataFreeResume: ResumeSupport<MergePlan, MergeResume['committed']> = {
  workflowType: 'dataFreeMerge',
  async inputFiles(plan) {
    const files: string[] = [];
    for (const ref of [plan.base, ...plan.models])
      files.push(...(await Checkpoint.open(ref.uri)).files.map((f) => f.uri));
    return files;
  },
  findCommitted(_plan, ledger) {
    return Object.fromEntries(Object.entries(ledger.entries).map(([k, e]) => [k, e.value]));
  },
};
