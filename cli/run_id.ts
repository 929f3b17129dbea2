/** Workflow ids for runs: merge-<name or method>-<UTC timestamp>-<random>. */
import { randomBytes } from 'node:crypto';

export function newRunId(label: string, now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `merge-${label}-${ts}-${randomBytes(3).toString('hex')}`;
}
