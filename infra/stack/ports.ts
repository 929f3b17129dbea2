/** Which ports the stack uses: options, then env, then those stack.env recorded, then the defaults. */
import * as fs from 'node:fs';
import { DEFAULT_PORTS, PORT_ENV } from './constants';
import { parseEnvText } from './env';
import type { Paths } from './paths';
import { StackError, type StackOptions } from './types';

export interface Ports {
  temporal: number;
  s3: number;
  s3Console: number;
}

function parsePort(value: string | number, source: string): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new StackError(`invalid port ${JSON.stringify(String(value))} from ${source}: expected an integer 1-65535`);
  }
  return n;
}

function portOf(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const m = /:(\d+)\/?$/.exec(url.trim());
  return m ? Number(m[1]) : undefined;
}

export function resolvePorts(opts: StackOptions, p: Paths): Ports {
  const env = opts.env ?? process.env;
  let saved: Record<string, string> = {};
  try {
    saved = parseEnvText(fs.readFileSync(p.envFile, 'utf8'));
  } catch {
    /* no stack.env yet */
  }
  const savedPorts: Partial<Ports> = {
    temporal: portOf(saved.TEMPORAL_ADDRESS),
    s3: portOf(saved.AWS_ENDPOINT_URL_S3),
    s3Console: portOf(saved.MERGEFLOW_S3_CONSOLE_URL),
  };
  const optPorts: Partial<Ports> = { temporal: opts.temporalPort, s3: opts.s3Port, s3Console: opts.s3ConsolePort };
  const out = {} as Ports;
  for (const key of ['temporal', 's3', 's3Console'] as const) {
    const fromOpt = optPorts[key];
    const fromEnv = env[PORT_ENV[key]];
    if (fromOpt !== undefined) out[key] = parsePort(fromOpt, `the ${key} port option`);
    else if (fromEnv) out[key] = parsePort(fromEnv, PORT_ENV[key]);
    else out[key] = savedPorts[key] ?? DEFAULT_PORTS[key];
  }
  if (new Set([out.temporal, out.s3, out.s3Console]).size !== 3) {
    throw new StackError(
      `ports must differ: Temporal ${out.temporal}, S3 ${out.s3}, S3 console ${out.s3Console} ` +
        `(set ${PORT_ENV.temporal}, ${PORT_ENV.s3}, ${PORT_ENV.s3Console})`,
    );
  }
  return out;
}
