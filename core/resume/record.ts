/**
 * The run record, `<work>/run.json`: written once a run has planned, it holds what a resumed run needs to carry on
 * exactly where the first one stopped: the workflow type, the config as it ran (newest checkpoints resolved,
 * scheduled time filled in), the plan, and a pin of every input file (size and ETag, or size and mtime for files).
 */
import { putObject, readJson, storeFor } from '../store';
import { NotFoundError } from '../store/types';
import { pool, REQUESTS_AT_ONCE } from '../store/s3_parts';

export interface InputPin {
  uri: string;
  size: number;
  etag?: string;
}

export interface RunRecord<Plan = unknown> {
  workflowType: string;
  /** The run that wrote the record (the first of a chain of resumed runs). */
  runId: string;
  workPrefix: string;
  /** The output (a .safetensors object or a folder); the work prefix lies outside it. */
  output: string;
  config: unknown;
  plan: Plan;
  inputs: InputPin[];
  createdAt: string;
}

/** An input changed since its run pinned it: resuming would mix work done on different bytes. */
export class InputChangedError extends Error {
  override name = 'InputChangedError';
}

export function runRecordUri(workPrefix: string): string {
  return `${workPrefix}run.json`;
}

/** Every input's size and version, stat'ed REQUESTS_AT_ONCE at a time (over S3 each stat is a round trip). */
export async function pinInputs(files: readonly string[]): Promise<InputPin[]> {
  const uris = [...new Set(files)];
  const stats = await pool(uris, REQUESTS_AT_ONCE, (uri) => storeFor(uri).stat(uri));
  return uris.map((uri, i) => {
    const st = stats[i];
    if (!st) throw new NotFoundError(`${uri}: input not found`);
    return { uri, size: st.size, etag: st.etag };
  });
}

/** One line per pinned input that is gone or differs now. */
export async function changedInputs(pins: readonly InputPin[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of pins) {
    const st = await storeFor(p.uri).stat(p.uri);
    if (!st) out.push(`${p.uri} is gone`);
    else if (st.size !== p.size || (p.etag !== undefined && st.etag !== p.etag))
      out.push(`${p.uri} changed (${p.size} bytes, ETag ${p.etag} -> ${st.size} bytes, ETag ${st.etag})`);
  }
  return out;
}

export async function writeRunRecord<Plan>(record: RunRecord<Plan>): Promise<string> {
  const uri = runRecordUri(record.workPrefix);
  // a resumed run keeps the first record (its pins are what the committed work was made from)
  if (await storeFor(uri).stat(uri)) return uri;
  await putObject(uri, Buffer.from(JSON.stringify(record, null, 1) + '\n'));
  return uri;
}

export async function readRunRecord<Plan>(workPrefix: string): Promise<RunRecord<Plan> | undefined> {
  const uri = runRecordUri(workPrefix);
  if (!(await storeFor(uri).stat(uri))) return undefined;
  return (await readJson(uri, (why) => new Error(`${uri}: run record is not valid JSON (${why})`))) as RunRecord<Plan>;
}

/**
 * Throws InputChangedError naming every changed input, unless `allowChanged`; returns the changes either way.
 * `runId` names the run in the message.
 */
export async function checkInputs(record: RunRecord, runId: string, allowChanged: boolean): Promise<string[]> {
  const changed = await changedInputs(record.inputs);
  if (changed.length && !allowChanged)
    throw new InputChangedError(
      `cannot resume ${runId}: ${changed.join('; ')} since the run started; its committed work was made from the old bytes. ` +
        `Start a new run, or pass --allow-changed-inputs to redo the work with the current inputs`,
    );
  return changed;
}
