/**
 * The config a run actually runs: `{scheduled_time}` in the output filled in (the time a schedule meant the run
 * for, or the run's start when no schedule started it), and `latest_under` checkpoints resolved by an activity.
 * The resolved checkpoints stay in the config (`resolved_latest`), so the run record and the manifest show them.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { AdamergingConfig, DataFreeConfig, MergeConfig } from '../core/config/schema';
import { fillScheduledTime, hasLatestUnder } from '../core/schedule/template';
import { ScheduledStartTime } from './search_attributes';

export function scheduledTime(): Date {
  const info = workflowInfo();
  return info.typedSearchAttributes.get(ScheduledStartTime) ?? info.startTime;
}

export async function runConfig<C extends MergeConfig>(
  config: C,
  resolve: (c: DataFreeConfig | AdamergingConfig) => Promise<{ config: unknown; resolved: unknown[] }>,
): Promise<C> {
  const filled = fillScheduledTime(config, scheduledTime());
  if (!hasLatestUnder(filled) || filled.method === 'frank_wolfe') return filled;
  const r = await resolve(filled as DataFreeConfig | AdamergingConfig);
  return { ...(r.config as C), resolved_latest: r.resolved };
}
