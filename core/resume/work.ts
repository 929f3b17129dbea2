/**
 * Where a run keeps its committed work: `<folder holding the output>/.mergeflow-work/<run id>/`, beside the output
 * and never inside it, so a failed run's work survives until it is resumed or `mergeflow gc` removes it, and an
 * output folder only ever holds what was published. Pure string functions: the workflow code imports them.
 */
export const WORK_FOLDER = '.mergeflow-work';

function trimmed(uri: string): string {
  return uri.replace(/\/+$/, '');
}

/** The work prefix (ends with '/') of run `workId` writing `output` (a .safetensors object or a folder). */
export function workPrefixFor(output: string, workId: string): string {
  const out = trimmed(output);
  const i = out.lastIndexOf('/');
  const parent = i < 0 ? out : out.slice(0, i);
  return `${parent}/${WORK_FOLDER}/${workId}/`;
}

/** True when `uri` is `folder` itself or lies under it. */
export function isUnder(uri: string, folder: string): boolean {
  const f = trimmed(folder);
  return trimmed(uri) === f || uri.startsWith(f + '/');
}

/** Refuses a work prefix inside the output folder (publishing or clearing one would then touch the other). */
export function checkWorkOutside(output: string, workPrefix: string): void {
  if (!output.endsWith('.safetensors') && isUnder(workPrefix, output))
    throw new Error(`work prefix ${workPrefix} lies inside the output folder ${output}; it must be outside it`);
}
