/** Search attributes mergeflow sets on its runs (registered by `mergeflow stack up`), and the one schedules set. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { upsertSearchAttributes } from '@temporalio/workflow';

export const MergeStatus = defineSearchAttributeKey('MergeStatus', SearchAttributeType.KEYWORD);
export const MergeMethod = defineSearchAttributeKey('MergeMethod', SearchAttributeType.KEYWORD);
/** Set by the server on runs a schedule starts: the time the run was scheduled for. */
export const ScheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** A run starts: status `running`, and its method (both searchable, e.g. in the Web UI). */
export function markRunStarted(method: string): void {
  upsertSearchAttributes([
    { key: MergeStatus, value: 'running' },
    { key: MergeMethod, value: method },
  ]);
}
