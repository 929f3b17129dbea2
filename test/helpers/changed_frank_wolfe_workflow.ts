/**
 * A deliberately incompatible edit of frankWolfeRun (it writes the model before any iteration): replaying a
 * recorded history against it must fail, which shows the replay test really checks the workflow.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { FwRunInput } from '../../core/merge/frank_wolfe/run_types';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

export async function frankWolfeRun(input: FwRunInput): Promise<void> {
  await acts.fwWriteModel(input.carried!.plan, input.carried!.theta);
}
