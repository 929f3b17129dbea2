/**
 * Which ports the stack uses: options, then env, then those stack.env recorded, then the defaults (the
 * Temporal UI's default is the Temporal port + 1000).
 */
import * as fs from 'node:fs';
import { DEFAULT_PORTS, PORT_ENV, TEMPORAL_UI_OFFSET } from './constants';
import { parseEnvText } from './env';
import type { Paths } from './paths';
import { StackError, type StackOptions } from './types';

export interface Ports {
  temporal: number;
  s3: number;
  s3Console: number;
  /** The Temporal Web UI. */
  temporalUi: number;
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
  const savedPorts: Partial<Omit<Ports, 'temporalUi'>> = {
    temporal: portOf(saved.TEMPORAL_ADDRESS),
    s3: portOf(saved.AWS_ENDPOINT_URL_S3),
    s3Console: portOf(saved.MERGEFLOW_S3_CONSOLE_URL),
  };
  const optPorts: Partial<Ports> = {
    temporal: opts.temporalPort,
    s3: opts.s3Port,
    s3Console: opts.s3ConsolePort,
    temporalUi: opts.temporalUiPort,
  };
  const out = {} as Ports;
  for (const key of ['temporal', 's3', 's3Console', 'temporalUi'] as const) {
    const fromOpt = optPorts[key];
    const fromEnv = env[PORT_ENV[key]];
    if (fromOpt !== undefined) out[key] = parsePort(fromOpt, `the ${key} port option`);
    else if (fromEnv) out[key] = parsePort(fromEnv, PORT_ENV[key]);
    else if (key === 'temporalUi') {
      // Follows the Temporal port (+1000, as `temporal server start-dev` does) unless set.
      out[key] = out.temporal + TEMPORAL_UI_OFFSET;
      if (out[key] > 65535) {
        throw new StackError(
          `the Temporal UI port would be ${out[key]} (Temporal port + ${TEMPORAL_UI_OFFSET}): set ${PORT_ENV.temporalUi} to a free port`,
        );
      }
    } else out[key] = savedPorts[key] ?? DEFAULT_PORTS[key];
  }
  if (new Set([out.temporal, out.s3, out.s3Console, out.temporalUi]).size !== 4) {
    throw new StackError(
      `ports must differ: Temporal ${out.temporal}, S3 ${out.s3}, S3 console ${out.s3Console}, Temporal UI ${out.temporalUi} ` +
        `(set ${PORT_ENV.temporal}, ${PORT_ENV.s3}, ${PORT_ENV.s3Console}, ${PORT_ENV.temporalUi})`,
    );
  }
  return out;
}
