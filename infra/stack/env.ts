/**
 * stack.env: KEY=VALUE lines (addresses, generated S3 credentials; mode 0600) that `up` writes and
 * the CLI reads as defaults for variables the user's environment does not set.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_BUCKET, DEFAULT_REGION, HOST } from './constants';
import { stackHome, type Paths } from './paths';
import type { Ports } from './ports';

const STACK_ENV_KEYS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'AWS_ENDPOINT_URL_S3',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'MERGEFLOW_BUCKET',
  'MERGEFLOW_S3_CONSOLE_URL',
  'MERGEFLOW_TEMPORAL_UI_URL',
] as const;

export function parseEnvText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    out[m[1]] = value;
  }
  return out;
}

/** Reads <home>/stack.env into an object ({} when there is none). */
export function loadStackEnv(home?: string): Record<string, string> {
  const file = path.join(stackHome(home), 'stack.env');
  try {
    return parseEnvText(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/**
 * Copies stack.env values into `target` (default process.env) for the keys it does not set, so the
 * user's own environment wins. Returns the keys it filled in.
 */
export function applyStackEnv(target: NodeJS.ProcessEnv = process.env, home?: string): string[] {
  const applied: string[] = [];
  for (const [k, v] of Object.entries(loadStackEnv(home))) {
    if (target[k] === undefined || target[k] === '') {
      target[k] = v;
      applied.push(k);
    }
  }
  return applied;
}

function randomString(alphabet: string, length: number): string {
  // Rejection sampling keeps the characters uniform.
  const out: string[] = [];
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    for (const b of crypto.randomBytes(length * 2)) {
      if (b < limit && out.length < length) out.push(alphabet[b % alphabet.length]);
    }
  }
  return out.join('');
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function maskSecret(value: string | undefined): string {
  if (!value) return '(unset)';
  return `${value.slice(0, 4)}…`;
}

function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** Creates or updates stack.env: addresses follow `ports`; credentials are generated only once. */
export function writeStackEnv(p: Paths, ports: Ports): Record<string, string> {
  let existing: Record<string, string> = {};
  try {
    existing = parseEnvText(fs.readFileSync(p.envFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const values: Record<string, string> = {
    TEMPORAL_ADDRESS: `${HOST}:${ports.temporal}`,
    TEMPORAL_NAMESPACE: existing.TEMPORAL_NAMESPACE || 'default',
    AWS_ENDPOINT_URL_S3: `http://${HOST}:${ports.s3}`,
    AWS_ACCESS_KEY_ID: existing.AWS_ACCESS_KEY_ID || `MF${randomString(UPPER_ALNUM, 18)}`,
    AWS_SECRET_ACCESS_KEY: existing.AWS_SECRET_ACCESS_KEY || randomString(SECRET_CHARS, 40),
    AWS_REGION: existing.AWS_REGION || DEFAULT_REGION,
    MERGEFLOW_BUCKET: existing.MERGEFLOW_BUCKET || DEFAULT_BUCKET,
    MERGEFLOW_S3_CONSOLE_URL: `http://${HOST}:${ports.s3Console}`,
    MERGEFLOW_TEMPORAL_UI_URL: `http://${HOST}:${ports.temporalUi}`,
  };
  const extra = Object.entries(existing).filter(([k]) => !(STACK_ENV_KEYS as readonly string[]).includes(k));
  const lines = [
    '# mergeflow local stack, written by `mergeflow stack up`. Private: holds the S3 credentials (mode 0600).',
    '# The CLI uses these values as defaults for variables your environment does not set.',
    ...STACK_ENV_KEYS.map((k) => `${k}=${values[k]}`),
    ...extra.map(([k, v]) => `${k}=${v}`),
    '',
  ];
  writePrivateFile(p.envFile, lines.join('\n'));
  return { ...existing, ...values };
}
