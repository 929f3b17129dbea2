/**
 * A deliberately incompatible edit of adaMergingRun (it asks for AdaMerging++'s preparation before validating):
 * replaying a recorded history against it must fail, which shows the replay test really checks the workflow.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { AdaRunInput } from '../../core/merge/adamerging/run_types';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

export async function adaMergingRun(input: AdaRunInput): Promise<void> {
  await acts.adaMergingLatestState(input.carried!.plan, 0, 1);
}
