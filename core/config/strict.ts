/** Objects that refuse unknown keys, with an error that lists the keys they take. */
import { z } from 'zod';

export function strictObject<S extends z.core.$ZodLooseShape>(shape: S) {
  const keys = Object.keys(shape);
  const allowed = keys.length ? `expected only ${keys.join(', ')}` : 'takes no keys';
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? allowed : undefined),
  });
}
