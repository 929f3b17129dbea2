/** Search attributes mergeflow sets on its runs (registered by `mergeflow stack up`), and the one schedules set. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const MergeStatus = defineSearchAttributeKey('MergeStatus', SearchAttributeType.KEYWORD);
export const MergeMethod = defineSearchAttributeKey('MergeMethod', SearchAttributeType.KEYWORD);
/** Set by the server on runs a schedule starts: the time the run was scheduled for. */
export const ScheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);
