/** Option parsers shared by commands (commander turns InvalidArgumentError into a usage message). */
import { InvalidArgumentError } from 'commander';

/** Parser for an integer option of at least `min`. */
export function intArg(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}
