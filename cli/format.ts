/** Human-readable summaries of runs and results. */
import type { MergeResult } from '../core/pipeline/run_types';

export function humanBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function resultLines(r: MergeResult): string[] {
  const lines = [
    `run       ${r.runId}`,
    `method    ${r.method}`,
    `output    ${r.output.uri}`,
    `sha256    ${r.output.sha256}`,
    `size      ${humanBytes(r.output.bytes)} (${r.tensorCount} tensors, ${r.mergedElements.toLocaleString('en')} merged values, ${r.shards} shards)`,
    `manifest  ${r.manifestUri}`,
    `time      ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
      .join(', ')}`,
  ];
  for (const w of r.warnings) lines.push(`warning   ${w}`);
  return lines;
}

export function printJson(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
}
