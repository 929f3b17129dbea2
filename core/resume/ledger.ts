/**
 * The ledger of a run's committed work: one small JSON record per unit (a shard part, a pass result, a coefficient
 * table, an optimiser state), written after the object itself is committed, under `<work>/committed/`. A record
 * holds the object's URI, size and sha256 and the unit's result. A resumed run reuses a unit only when its record
 * exists and the object is still there with the same size and sha256; anything else is redone.
 */
import { Committed, putObject, readJson, sha256Of, sha256OfRange, storeFor } from '../store';

export interface LedgerEntry<T = unknown> {
  key: string;
  /** The committed object, when the unit wrote one. */
  object?: Committed;
  /** The unit's result as its step returned it (plain JSON). */
  value: T;
}

export function ledgerPrefix(workPrefix: string): string {
  return `${workPrefix}committed/`;
}

function entryUri(workPrefix: string, key: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(key))
    throw new Error(`ledger key '${key}' has characters other than A-Z a-z 0-9 _ . -`);
  return `${ledgerPrefix(workPrefix)}${key}.json`;
}

/** Record a committed unit. `object` defaults to hashing the object at `uri` (small objects: pass results, tables). */
export async function recordCommitted<T>(
  workPrefix: string,
  key: string,
  value: T,
  object?: Committed | string,
): Promise<void> {
  let committed: Committed | undefined;
  if (typeof object === 'string') {
    const st = await storeFor(object).stat(object);
    if (!st) throw new Error(`${object}: cannot record a commit of an object that is not there`);
    committed = { uri: object, bytes: st.size, sha256: await sha256Of(object, st.size) };
  } else committed = object;
  const entry: LedgerEntry<T> = { key, object: committed, value };
  await putObject(entryUri(workPrefix, key), Buffer.from(JSON.stringify(entry) + '\n'));
}

/**
 * Whether the object a record names is still there, with the recorded size and sha256 (for a range of a staged
 * object: the object still reaches past the range, and the range hashes the same).
 */
export async function stillCommitted(object: Committed): Promise<boolean> {
  const st = await storeFor(object.uri).stat(object.uri);
  const offset = object.offset ?? 0;
  if (!st || (object.offset === undefined ? st.size !== object.bytes : st.size < offset + object.bytes)) return false;
  return (await sha256OfRange(object.uri, offset, object.bytes)) === object.sha256;
}

export interface VerifiedLedger {
  /** Units that may be reused, by key. */
  entries: Record<string, LedgerEntry>;
  /** Keys whose record exists but whose object is gone or changed (they are redone). */
  rejected: string[];
}

/** Read every record under the work prefix and keep those whose object checks out. */
export async function verifiedLedger(workPrefix: string): Promise<VerifiedLedger> {
  const prefix = ledgerPrefix(workPrefix);
  const entries: Record<string, LedgerEntry> = {};
  const rejected: string[] = [];
  for (const uri of await storeFor(prefix).list(prefix)) {
    if (!uri.endsWith('.json')) continue;
    let entry: LedgerEntry;
    try {
      entry = (await readJson(uri, (why) => new Error(why))) as LedgerEntry;
    } catch {
      rejected.push(uri);
      continue;
    }
    if (entry.object && !(await stillCommitted(entry.object))) rejected.push(entry.key);
    else entries[entry.key] = entry;
  }
  return { entries, rejected };
}
