/** Start the workflow that runs a validated config: one place that maps a method to its workflow type. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { isDataFree, MergeConfig } from '../core/config/schema';
import type { AdaRunInput } from '../core/merge/adamerging/run_types';
import type { FwRunInput } from '../core/merge/frank_wolfe/run_types';
import type { MergeRunInput } from '../core/pipeline/run_types';

export interface StartOptions {
  taskQueue: string;
  workflowId: string;
  workflowIdConflictPolicy?: 'USE_EXISTING' | 'FAIL';
  heartbeatTimeoutSeconds?: number;
}

/** The workflow type that runs `config`. */
export function workflowTypeFor(config: MergeConfig): 'dataFreeMerge' | 'frankWolfeRun' | 'adaMergingRun' {
  if (isDataFree(config)) return 'dataFreeMerge';
  return config.method === 'frank_wolfe' ? 'frankWolfeRun' : 'adaMergingRun';
}

export async function startRun(client: Client, config: MergeConfig, o: StartOptions): Promise<WorkflowHandle> {
  const { heartbeatTimeoutSeconds, ...start } = o;
  const extra = heartbeatTimeoutSeconds === undefined ? {} : { heartbeatTimeoutSeconds };
  if (isDataFree(config))
    return client.workflow.start('dataFreeMerge', { ...start, args: [{ config, ...extra } satisfies MergeRunInput] });
  if (config.method === 'frank_wolfe')
    return client.workflow.start('frankWolfeRun', { ...start, args: [{ config, ...extra } satisfies FwRunInput] });
  return client.workflow.start('adaMergingRun', { ...start, args: [{ config, ...extra } satisfies AdaRunInput] });
}
