/** Search attributes mergeflow sets on its runs (registered by `mergeflow stack up`). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const MergeStatus = defineSearchAttributeKey('MergeStatus', SearchAttributeType.KEYWORD);
export const MergeMethod = defineSearchAttributeKey('MergeMethod', SearchAttributeType.KEYWORD);
