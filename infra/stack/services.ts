/**
 * The command lines and environments of the two services: the Temporal dev server (with its Web UI) and the
 * S3 server, SeaweedFS (`weed mini`) or, where infra/install.sh fell back to `go install`, MinIO.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST } from './constants';
import { binaryPresent } from './install';
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

export function temporalArgs(p: Paths, ports: Ports, dyn: string[]): string[] {
  const args = [
    'server',
    'start-dev',
    '--ip',
    HOST,
    '-p',
    String(ports.temporal),
    '--ui-port',
    String(ports.temporalUi),
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
// S3

export type S3Server = 'seaweedfs' | 'minio';
export const S3_SERVERS: readonly S3Server[] = ['seaweedfs', 'minio'];
export const S3_SERVER_ENV = 'MERGEFLOW_S3_SERVER';

export const s3Bin = (p: Paths, server: S3Server) => (server === 'seaweedfs' ? p.weedBin : p.minioBin);
export const s3DataDir = (p: Paths, server: S3Server) => (server === 'seaweedfs' ? p.seaweedDir : p.minioDir);
/** The URL path that answers 200 once the server serves S3. */
export const s3HealthPath = (server: S3Server) => (server === 'seaweedfs' ? '/healthz' : '/minio/health/live');
/** Which S3 server a running binary is, from its file name. */
export const s3ServerOfBin = (bin: string): S3Server => (path.basename(bin) === 'minio' ? 'minio' : 'seaweedfs');

/**
 * The S3 server `up` runs: MERGEFLOW_S3_SERVER when set; else MinIO where a MinIO stack already keeps data in
 * this folder (so its objects stay reachable); else SeaweedFS when installed; else MinIO when installed (the
 * go-install fallback). null: nothing usable is installed yet.
 */
export function chooseS3Server(p: Paths, env: NodeJS.ProcessEnv): S3Server | null {
  const forced = env[S3_SERVER_ENV];
  if (forced) {
    if (!(S3_SERVERS as readonly string[]).includes(forced)) {
      throw new StackError(`${S3_SERVER_ENV}=${forced} is not a server this stack runs: use seaweedfs or minio`);
    }
    return binaryPresent(s3Bin(p, forced as S3Server)) ? (forced as S3Server) : null;
  }
  const weed = binaryPresent(p.weedBin);
  const minio = binaryPresent(p.minioBin);
  if (minio && fs.existsSync(path.join(p.minioDir, '.minio.sys'))) return 'minio';
  if (weed) return 'seaweedfs';
  if (minio) return 'minio';
  return null;
}

export function s3Env(server: S3Server, env: NodeJS.ProcessEnv, vars: Record<string, string>): NodeJS.ProcessEnv {
  return server === 'seaweedfs' ? weedEnv(env) : minioEnv(env, vars);
}

/** The S3 server's command line; for SeaweedFS also writes its credentials file (mode 0600). */
export function s3Args(server: S3Server, p: Paths, ports: Ports, vars: Record<string, string>, internal: number[]) {
  return server === 'seaweedfs' ? weedArgs(p, ports, vars, internal) : minioArgs(p, ports);
}

/** How many extra loopback ports `weed mini` needs (master, volume, admin: HTTP + gRPC; filer and S3 gRPC). */
export const WEED_INTERNAL_PORTS = 8;

/** No AWS_*, S3_* or WEED_* settings of the user's: the identity comes from the s3.json written here. */
export function weedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!/^(AWS_|S3_|WEED_)/.test(k)) out[k] = v;
  return out;
}

/**
 * `weed mini`: master, volume server, filer and S3 gateway in one process, data under <home>/seaweedfs.
 * S3 on ports.s3, the filer (its web UI browses the buckets) on ports.s3Console, the rest on `internal`
 * (free loopback ports picked at start; SeaweedFS finds its data again whatever they are). No WebDAV, no
 * Iceberg or Lance endpoints, no admin UI.
 */
export function weedArgs(p: Paths, ports: Ports, vars: Record<string, string>, internal: number[]): string[] {
  if (internal.length < WEED_INTERNAL_PORTS) throw new StackError(`weed needs ${WEED_INTERNAL_PORTS} internal ports`);
  const [masterHttp, masterGrpc, volumeHttp, volumeGrpc, filerGrpc, s3Grpc, adminHttp, adminGrpc] = internal;
  fs.mkdirSync(path.join(p.seaweedDir, 'master'), { recursive: true });
  const config = path.join(p.seaweedDir, 's3.json');
  const identities = {
    identities: [
      {
        name: 'mergeflow',
        credentials: [{ accessKey: vars.AWS_ACCESS_KEY_ID, secretKey: vars.AWS_SECRET_ACCESS_KEY }],
        actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
      },
    ],
  };
  const tmp = `${config}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(identities, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, config);
  return [
    'mini',
    `-dir=${p.seaweedDir}`,
    `-master.dir=${path.join(p.seaweedDir, 'master')}`,
    `-ip=${HOST}`,
    `-ip.bind=${HOST}`,
    `-s3.port=${ports.s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.config=${config}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-filer.port=${ports.s3Console}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-master.port=${masterHttp}`,
    `-master.port.grpc=${masterGrpc}`,
    `-volume.port=${volumeHttp}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.preStopSeconds=0',
    '-admin.ui=false',
    `-admin.port=${adminHttp}`,
    `-admin.port.grpc=${adminGrpc}`,
    '-webdav=false',
  ];
}

// MinIO (the go-install fallback)

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
