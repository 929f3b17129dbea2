/** Errors raised by model code: a bad config, a checkpoint that does not fit it, or an input of the wrong shape. */
export class ModelError extends Error {
  override name = 'ModelError';
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
