/** The command lines and environments of the two services: the Temporal dev server and MinIO. */
import { HOST } from './constants';
import type { Paths } from './paths';
import type { Ports } from './ports';
import { execText } from './process';
import { StackError, type StackOptions } from './types';

const SEARCH_ATTRIBUTES: Record<string, string> = { MergeStatus: 'Keyword', MergeMethod: 'Keyword' };

// ---------------------------------------------------------------------------------------------
// Temporal

/** Environment for the temporal binary: no TEMPORAL_* settings of the user's (address, TLS, API key, profile). */
export function temporalEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('TEMPORAL_')) out[k] = v;
  out.TEMPORAL_VERSION_CHECK_DISABLED = '1';
  return out;
}

export function temporalClientArgs(port: number): string[] {
  return ['--address', `${HOST}:${port}`, '--namespace', 'default', '--disable-config-file', '--disable-config-env'];
}

export function dynamicConfig(opts: StackOptions): string[] {
  const env = opts.env ?? process.env;
  const list = [
    ...(env.MERGEFLOW_TEMPORAL_DYNAMIC_CONFIG ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    ...(opts.temporalDynamicConfig ?? []),
  ];
  for (const kv of list) {
    if (!/^[A-Za-z0-9_.]+=.+$/.test(kv)) {
      throw new StackError(
        `invalid Temporal dynamic config ${JSON.stringify(kv)}: expected KEY=VALUE (MERGEFLOW_TEMPORAL_DYNAMIC_CONFIG)`,
      );
    }
  }
  return list;
}

export function temporalArgs(p: Paths, port: number, dyn: string[]): string[] {
  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    HOST,
    '-p',
    String(port),
    '--db-filename',
    p.temporalDb,
    '--namespace',
    'default',
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
  ];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const kv of dyn) args.push('--dynamic-config-value', kv);
  args.push('--log-level', 'warn');
  return args;
}

/** Registers our search attributes when the namespace lacks them (an older dev.db). */
export async function ensureSearchAttributes(p: Paths, port: number, env: NodeJS.ProcessEnv): Promise<void> {
  const tenv = temporalEnv(env);
  const list = await execText(
    p.temporalBin,
    ['operator', 'search-attribute', 'list', ...temporalClientArgs(port), '--output', 'json'],
    tenv,
    15_000,
  );
  if (!list.ok) throw new StackError(`cannot list Temporal search attributes: ${list.out.trim().split('\n')[0]}`);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    if (list.out.includes(`"${name}"`)) continue;
    const res = await execText(
      p.temporalBin,
      ['operator', 'search-attribute', 'create', '--name', name, '--type', type, ...temporalClientArgs(port)],
      tenv,
      15_000,
    );
    if (!res.ok)
      throw new StackError(`cannot create Temporal search attribute ${name}: ${res.out.trim().split('\n')[0]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// MinIO

export function minioEnv(env: NodeJS.ProcessEnv, vars: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('MINIO_')) out[k] = v;
  out.MINIO_ROOT_USER = vars.AWS_ACCESS_KEY_ID;
  out.MINIO_ROOT_PASSWORD = vars.AWS_SECRET_ACCESS_KEY;
  out.MINIO_UPDATE = 'off';
  return out;
}

export function minioArgs(p: Paths, ports: Ports): string[] {
  return [
    'server',
    p.minioDir,
    '--address',
    `${HOST}:${ports.s3}`,
    '--console-address',
    `${HOST}:${ports.s3Console}`,
    '--quiet',
  ];
}
