/** Human-readable summaries of runs and results. */
import type { MergeResult } from '../core/pipeline/run_types';
import type { AdaResult } from '../core/merge/adamerging/run_types';
import type { FwResult } from '../core/merge/frank_wolfe/run_types';

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
    ...(r.outputFiles ?? []).map((f) => `file      ${f.uri} ${humanBytes(f.bytes)} sha256 ${f.sha256}`),
    `manifest  ${r.manifestUri}`,
    `time      ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
      .join(', ')}`,
  ];
  const ada = r as Partial<AdaResult>;
  if (ada.lambdaJson) {
    const fmt = (v: number) => v.toFixed(4);
    lines.push(
      `steps     ${ada.steps} in ${ada.epochs} epochs; loss per task at the last step ${(ada.lossPerTask ?? []).map(fmt).join(', ')}`,
    );
    for (const l of ada.lambda ?? [])
      lines.push(`λ         ${l.task}: mean ${fmt(l.mean)} (min ${fmt(l.min)}, max ${fmt(l.max)})`);
    if (ada.accuracy)
      lines.push(
        `accuracy  average ${(ada.accuracy.average * 100).toFixed(1)} %; ${Object.entries(ada.accuracy.tasks)
          .map(([t, a]) => `${t} ${(a * 100).toFixed(1)}`)
          .join(', ')}`,
      );
    lines.push(`lambda    ${ada.lambdaJson}, ${ada.lambdaSafetensors}`);
    lines.push(`losses    ${ada.losses}`);
    lines.push(`report    ${ada.report}`);
    lines.push(`state     ${ada.stateUri}`);
    if (ada.orchestration)
      lines.push(
        `overhead  ${(ada.orchestration.overheadFraction * 100).toFixed(1)} % of the epochs' wall time outside optimiser steps`,
      );
  }
  lines.push(...fwLines(r));
  for (const w of r.warnings) lines.push(`warning   ${w}`);
  return lines;
}

function accuracyLine(acc: { average: number; tasks: Record<string, number> }): string {
  return `accuracy  average ${(acc.average * 100).toFixed(1)} %; ${Object.entries(acc.tasks)
    .map(([t, a]) => `${t} ${(a * 100).toFixed(1)}`)
    .join(', ')}`;
}

/** Frank-Wolfe's extra lines: iterations, the objective, where the selections and pictures are. */
function fwLines(r: MergeResult): string[] {
  const f = r as Partial<FwResult>;
  if (!f.selections) return [];
  const obj = f.objective ?? [];
  const lines = [
    `variant   FW-${f.variant === 'hard' ? 'Hard' : 'Soft'}, ${f.oracle}-wise oracle, ${f.iterations} iterations`,
    `objective ${obj.length ? `${obj[0].toFixed(4)} → ${obj[obj.length - 1].toFixed(4)} (f at θt, first and last iteration)` : '-'}`,
  ];
  if (f.accuracy) lines.push(accuracyLine(f.accuracy));
  lines.push(`selection ${f.selections}`);
  lines.push(`pictures  ${f.objectivePng}, ${f.selectionPng}`);
  if (f.split && f.iterations)
    lines.push(
      `per iter  ${(['gradient', 'oracle', 'update', 'orchestration'] as const)
        .map((k) => `${k} ${(f.split![k] / f.iterations!).toFixed(2)}s`)
        .join(', ')}`,
    );
  return lines;
}

export function printJson(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
}
