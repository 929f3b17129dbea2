/**
 * Opening many headers at once while planning (over S3 each is a round trip), with every outcome kept, so the
 * checks that follow can still take the items in order and report the first problem in that order.
 */
import { pool, REQUESTS_AT_ONCE } from '../../store/s3_parts';

export type Opened<T> = { value: T } | { error: unknown };

export function openedInParallel<I, T>(
  items: readonly I[],
  open: (item: I, i: number) => Promise<T>,
): Promise<Opened<T>[]> {
  return pool(items, REQUESTS_AT_ONCE, (item, i) =>
    open(item, i).then(
      (value): Opened<T> => ({ value }),
      (error: unknown): Opened<T> => ({ error }),
    ),
  );
}

/** The value, or the error it failed with, thrown. */
export function unwrap<T>(o: Opened<T>): T {
  if ('error' in o) throw o.error;
  return o.value;
}
