/** Reading a run's history in tests and drills. */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { EpochResult } from '../../core/merge/adamerging/run_types';

/** Every AdaMerging epoch result in a run's history, in order. */
export async function epochResults(h: WorkflowHandle): Promise<EpochResult[]> {
  const hist = await h.fetchHistory();
  return (hist.events ?? [])
    .map((e) => e.activityTaskCompletedEventAttributes?.result?.payloads?.[0])
    .filter((p) => p !== undefined && p !== null)
    .map((p) => defaultPayloadConverter.fromPayload<unknown>(p!))
    .filter((v): v is EpochResult => typeof v === 'object' && v !== null && 'resumedFrom' in v);
}
