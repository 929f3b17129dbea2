/**
 * Workflow histories as committed JSON fixtures for replay tests. The proto's own toObject/fromObject are used
 * (int64 as strings, bytes as base64, enums as names) rather than proto-utils' historyToJSON/historyFromJSON,
 * which fail here ("type must be a Type") because @temporalio/common and @temporalio/proto each install their own
 * protobufjs copy.
 */
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
const HistoryType = temporal.api.history.v1.History;

export function historyToFixture(history: History): string {
  const obj = HistoryType.toObject(HistoryType.fromObject(history), { longs: String, bytes: String, enums: String });
  return JSON.stringify(obj, null, 1) + '\n';
}

/** A History the replay worker accepts (int64 fields as Long). */
export function historyFromFixture(json: string): temporal.api.history.v1.History {
  return HistoryType.fromObject(JSON.parse(json));
}
