/**
 * The local stack: a Temporal dev server (SQLite-backed, so runs survive a restart) and a MinIO S3
 * server, both bound to 127.0.0.1, started detached with their logs in files.
 *
 * State folder (MERGEFLOW_HOME, default <repo>/.mergeflow):
 *   bin/        temporal, minio (infra/install.sh builds them)
 *   temporal/   dev.db (SQLite)
 *   minio/      object data
 *   logs/       temporal.log, minio.log, install-*.log
 *   pids/       temporal.pid, s3.pid (+ .json with the port and arguments used)
 *   stack.env   KEY=VALUE lines (addresses, generated S3 credentials; mode 0600)
 *
 * No Temporal SDK import: readiness is checked with the temporal CLI and plain TCP/HTTP.
 */
import { execFile, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export type ServiceName = 'temporal' | 's3';

export interface StackOptions {
  /** State folder; default env MERGEFLOW_HOME, else <repo>/.mergeflow. */
  home?: string;
  /** Folder holding the temporal and minio binaries; default env MERGEFLOW_BIN, else <home>/bin. */
  binDir?: string;
  /** Ports; default env MERGEFLOW_TEMPORAL_PORT / MERGEFLOW_S3_PORT / MERGEFLOW_S3_CONSOLE_PORT, else
   *  the ports recorded in stack.env by the last `up`, else 7233 / 9000 / 9001. */
  temporalPort?: number;
  s3Port?: number;
  s3ConsolePort?: number;
  /** Extra `--dynamic-config-value KEY=JSON` entries for the Temporal dev server, added to those of
   *  env MERGEFLOW_TEMPORAL_DYNAMIC_CONFIG (comma-separated KEY=VALUE list). */
  temporalDynamicConfig?: string[];
  /** How long `up` waits for each service to answer (default 60 000 ms). */
  timeoutMs?: number;
  /** How long `down` waits after SIGTERM before SIGKILL (default 15 000 ms). */
  stopTimeoutMs?: number;
  /** Run infra/install.sh when a binary is missing (default true). */
  install?: boolean;
  /** Environment to read settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where human-readable lines go (default console.log). */
  log?: (line: string) => void;
  /** Print nothing (same as log: () => {}). */
  quiet?: boolean;
}

export interface ServiceStatus {
  name: ServiceName;
  state: 'running' | 'stopped';
  pid: number | null;
  /** Temporal: host:port (gRPC). S3: endpoint URL. */
  address: string;
  /** Whether the service answered a quick probe (Temporal: TCP connect; S3: /minio/health/live). */
  answering: boolean;
  /** MinIO web console (S3 only). */
  console?: string;
  log: string;
}

export interface StackStatus {
  home: string;
  envFile: string;
  bucket: string;
  services: Record<ServiceName, ServiceStatus>;
}

/** A one-line, user-facing failure (the CLI prints `message` and exits 1). */
export class StackError extends Error {
  override name = 'StackError';
}

const HOST = '127.0.0.1';
const DEFAULT_PORTS = { temporal: 7233, s3: 9000, s3Console: 9001 } as const;
const PORT_ENV = {
  temporal: 'MERGEFLOW_TEMPORAL_PORT',
  s3: 'MERGEFLOW_S3_PORT',
  s3Console: 'MERGEFLOW_S3_CONSOLE_PORT',
} as const;
const SEARCH_ATTRIBUTES: Record<string, string> = { MergeStatus: 'Keyword', MergeMethod: 'Keyword' };
const DEFAULT_BUCKET = 'mergeflow';
const DEFAULT_REGION = 'us-east-1';
const STACK_ENV_KEYS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'AWS_ENDPOINT_URL_S3',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'MERGEFLOW_BUCKET',
  'MERGEFLOW_S3_CONSOLE_URL',
] as const;
const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Paths

/** The repository (package) root: the nearest folder above this file with mergeflow's package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    try {
      if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'mergeflow') return dir;
    } catch {
      /* keep looking */
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

export function stackHome(home?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(home ?? (env.MERGEFLOW_HOME || path.join(repoRoot(), '.mergeflow')));
}

interface Paths {
  home: string;
  bin: string;
  temporalBin: string;
  minioBin: string;
  temporalDir: string;
  temporalDb: string;
  minioDir: string;
  logs: string;
  pids: string;
  envFile: string;
}

function paths(opts: StackOptions): Paths {
  const env = opts.env ?? process.env;
  const home = stackHome(opts.home, env);
  const bin = path.resolve(opts.binDir ?? (env.MERGEFLOW_BIN || path.join(home, 'bin')));
  return {
    home,
    bin,
    temporalBin: path.join(bin, 'temporal'),
    minioBin: path.join(bin, 'minio'),
    temporalDir: path.join(home, 'temporal'),
    temporalDb: path.join(home, 'temporal', 'dev.db'),
    minioDir: path.join(home, 'minio'),
    logs: path.join(home, 'logs'),
    pids: path.join(home, 'pids'),
    envFile: path.join(home, 'stack.env'),
  };
}

const logFile = (p: Paths, svc: ServiceName) => path.join(p.logs, svc === 'temporal' ? 'temporal.log' : 'minio.log');
const pidFile = (p: Paths, svc: ServiceName) => path.join(p.pids, `${svc}.pid`);
const infoFile = (p: Paths, svc: ServiceName) => path.join(p.pids, `${svc}.json`);

// ---------------------------------------------------------------------------------------------
// stack.env

function parseEnvText(text: string): Record<string, string> {
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
function writeStackEnv(p: Paths, ports: Ports): Record<string, string> {
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

// ---------------------------------------------------------------------------------------------
// Ports

interface Ports {
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

function resolvePorts(opts: StackOptions, p: Paths): Ports {
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

/** true when nothing listens on HOST:port (we can bind it ourselves). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(new StackError(`cannot bind ${HOST}:${port}: ${err.message}`));
    });
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function tcpAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function s3Live(port: number, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}/minio/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return res.status === 200;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

interface ServiceInfo {
  pid: number;
  port: number;
  consolePort?: number;
  bin: string;
  args: string[];
  dynamicConfig?: string[];
  startedAt: string;
}

function readPid(p: Paths, svc: ServiceName): number | null {
  try {
    const n = Number(fs.readFileSync(pidFile(p, svc), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function readInfo(p: Paths, svc: ServiceName): ServiceInfo | null {
  try {
    return JSON.parse(fs.readFileSync(infoFile(p, svc), 'utf8')) as ServiceInfo;
  } catch {
    return null;
  }
}

function removePidFiles(p: Paths, svc: ServiceName): void {
  fs.rmSync(pidFile(p, svc), { force: true });
  fs.rmSync(infoFile(p, svc), { force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A zombie (exited, not yet reaped) still answers kill(0).
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    /* no /proc (macOS) or it just went away */
  }
  return true;
}

/** Whether `pid` is alive and (where /proc tells) runs the expected binary, so a reused pid is not ours. */
function isOurProcess(pid: number, binName: string): boolean {
  if (!pidAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return pidAlive(pid); // no /proc: trust the pid file
  }
  const argv = cmdline.split('\0');
  return path.basename(argv[0] ?? '') === binName && argv[1] === 'server';
}

function runningPid(p: Paths, svc: ServiceName): number | null {
  const pid = readPid(p, svc);
  if (pid === null) return null;
  return isOurProcess(pid, svc === 'temporal' ? 'temporal' : 'minio') ? pid : null;
}

function rotateLog(file: string): void {
  try {
    if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    /* no log yet */
  }
}

/** The last line the service wrote to its log (after our own header line), shortened, or ''. */
function lastLogLine(file: string): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 16 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      const last = lines[lines.length - 1] ?? '';
      if (last.startsWith('=== ')) return '';
      const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(last)?.[1]?.replace(/\\"/g, '"') ?? last;
      return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

interface Spawned {
  pid: number;
  /** Set once the process exits (while this Node process still watches it). */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  spawnError: Error | null;
}

function startDetached(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: string,
  cwd: string,
): Promise<Spawned> {
  rotateLog(log);
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `\n=== ${new Date().toISOString()} mergeflow stack up: ${bin} ${args.join(' ')}\n`);
  let child;
  try {
    child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd });
  } finally {
    fs.closeSync(fd);
  }
  const state: Spawned = { pid: child.pid ?? -1, exited: null, spawnError: null };
  child.once('exit', (code, signal) => {
    state.exited = { code, signal };
  });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      state.spawnError = err;
      if (state.pid < 0) reject(new StackError(`cannot start ${bin}: ${err.message}`));
    });
    child.once('spawn', () => {
      child.unref();
      resolve(state);
    });
  });
}

function execText(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: `${stdout}${stderr}` });
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Temporal

/** Environment for the temporal binary: no TEMPORAL_* settings of the user's (address, TLS, API key, profile). */
function temporalEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('TEMPORAL_')) out[k] = v;
  out.TEMPORAL_VERSION_CHECK_DISABLED = '1';
  return out;
}

function temporalClientArgs(port: number): string[] {
  return ['--address', `${HOST}:${port}`, '--namespace', 'default', '--disable-config-file', '--disable-config-env'];
}

function dynamicConfig(opts: StackOptions): string[] {
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

function temporalArgs(p: Paths, port: number, dyn: string[]): string[] {
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

async function temporalReady(p: Paths, port: number, env: NodeJS.ProcessEnv): Promise<boolean> {
  if (!(await tcpAnswers(port))) return false;
  const res = await execText(
    p.temporalBin,
    ['operator', 'namespace', 'describe', ...temporalClientArgs(port)],
    temporalEnv(env),
    10_000,
  );
  return res.ok;
}

/** Registers our search attributes when the namespace lacks them (an older dev.db). */
async function ensureSearchAttributes(p: Paths, port: number, env: NodeJS.ProcessEnv): Promise<void> {
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

function minioEnv(env: NodeJS.ProcessEnv, vars: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('MINIO_')) out[k] = v;
  out.MINIO_ROOT_USER = vars.AWS_ACCESS_KEY_ID;
  out.MINIO_ROOT_PASSWORD = vars.AWS_SECRET_ACCESS_KEY;
  out.MINIO_UPDATE = 'off';
  return out;
}

function minioArgs(p: Paths, ports: Ports): string[] {
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

async function createBucket(vars: Record<string, string>, port: number): Promise<void> {
  // Loaded here so that `status` and `down` do not pay for (or warn about) the AWS SDK.
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: `http://${HOST}:${port}`,
    region: vars.AWS_REGION || DEFAULT_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: vars.AWS_ACCESS_KEY_ID, secretAccessKey: vars.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: vars.MERGEFLOW_BUCKET || DEFAULT_BUCKET }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou') {
      throw new StackError(`cannot create bucket ${vars.MERGEFLOW_BUCKET}: ${name}: ${(err as Error).message}`);
    }
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Install

function binaryPresent(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function runInstall(p: Paths, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const script = path.join(repoRoot(), 'infra', 'install.sh');
  if (!fs.existsSync(script)) {
    throw new StackError(`binaries missing in ${p.bin} and ${script} not found: install temporal and minio there`);
  }
  log(`stack: installing binaries into ${p.bin} (infra/install.sh)`);
  const child = spawn('bash', [script], {
    env: { ...env, MERGEFLOW_HOME: p.home, MERGEFLOW_BIN: p.bin },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let lastErr = '';
  const forward = (buf: Buffer, isErr: boolean) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      if (isErr) lastErr = line;
      if (!line.startsWith('install: error: ')) log(line); // that one is thrown below
    }
  };
  child.stdout.on('data', (b: Buffer) => forward(b, false));
  child.stderr.on('data', (b: Buffer) => forward(b, true));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0)
    throw new StackError(lastErr.replace(/^install: error: /, '') || `infra/install.sh failed (exit ${code})`);
}

// ---------------------------------------------------------------------------------------------
// Public API

function logger(opts: StackOptions): (line: string) => void {
  if (opts.quiet) return () => {};
  return opts.log ?? ((line: string) => console.log(line));
}

async function probe(svc: ServiceName, port: number): Promise<boolean> {
  return svc === 'temporal' ? tcpAnswers(port) : s3Live(port);
}

function serviceStatus(
  p: Paths,
  svc: ServiceName,
  ports: Ports,
  pid: number | null,
  answering: boolean,
): ServiceStatus {
  const info = pid !== null ? readInfo(p, svc) : null;
  const port = info?.port ?? (svc === 'temporal' ? ports.temporal : ports.s3);
  const st: ServiceStatus = {
    name: svc,
    state: pid !== null ? 'running' : 'stopped',
    pid,
    address: svc === 'temporal' ? `${HOST}:${port}` : `http://${HOST}:${port}`,
    answering,
    log: logFile(p, svc),
  };
  if (svc === 's3') st.console = `http://${HOST}:${info?.consolePort ?? ports.s3Console}`;
  return st;
}

function formatService(s: ServiceStatus): string {
  const label = s.name === 'temporal' ? 'temporal' : 's3      ';
  const pid = s.pid !== null ? `pid ${s.pid}` : 'no pid';
  const extra = s.state === 'running' && !s.answering ? '  (not answering)' : '';
  const consoleUrl = s.console && s.state === 'running' ? `  console ${s.console}` : '';
  return `stack: ${label}  ${s.state.padEnd(7)}  ${pid.padEnd(10)}  ${s.address}${consoleUrl}${extra}  log ${s.log}`;
}

/** One-line-per-service text for a status object. */
export function formatStatus(status: StackStatus): string[] {
  return [formatService(status.services.temporal), formatService(status.services.s3)];
}

interface StartPlan {
  svc: ServiceName;
  port: number;
  label: string;
}

const LABEL: Record<ServiceName, string> = { temporal: 'Temporal', s3: 'S3 (MinIO)' };

/**
 * Before anything starts: a service of ours that runs must run on the requested port, and every port
 * a service still has to take must be free.
 */
async function preflight(p: Paths, ports: Ports): Promise<void> {
  const wanted: { svc: ServiceName; port: number; env: string; label: string }[] = [
    { svc: 'temporal', port: ports.temporal, env: PORT_ENV.temporal, label: 'Temporal' },
    { svc: 's3', port: ports.s3, env: PORT_ENV.s3, label: 'S3' },
    { svc: 's3', port: ports.s3Console, env: PORT_ENV.s3Console, label: 'MinIO console' },
  ];
  for (const svc of ['temporal', 's3'] as const) {
    const pid = runningPid(p, svc);
    const info = pid !== null ? readInfo(p, svc) : null;
    const port = svc === 'temporal' ? ports.temporal : ports.s3;
    if (info && info.port !== port) {
      throw new StackError(
        `${LABEL[svc]} is already running (pid ${pid}) on port ${info.port}, not ${port}: ` +
          `run \`mergeflow stack down\` before changing ${svc === 'temporal' ? PORT_ENV.temporal : PORT_ENV.s3}`,
      );
    }
  }
  for (const w of wanted) {
    if (runningPid(p, w.svc) !== null) continue;
    if (!(await portFree(w.port))) {
      throw new StackError(
        `port ${w.port} (${w.label}) is already in use by another program: set ${w.env} to a free port`,
      );
    }
  }
}

async function ensureService(
  p: Paths,
  plan: StartPlan,
  opts: StackOptions,
  start: () => Promise<{ spawned: Spawned; info: ServiceInfo }>,
  ready: () => Promise<boolean>,
  log: (line: string) => void,
): Promise<{ pid: number; started: boolean }> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const logPath = logFile(p, plan.svc);
  let pid = runningPid(p, plan.svc);
  let spawned: Spawned | null = null;
  if (pid === null) {
    removePidFiles(p, plan.svc); // stale, if any
    const { spawned: s, info } = await start();
    spawned = s;
    pid = s.pid;
    fs.writeFileSync(pidFile(p, plan.svc), `${pid}\n`);
    fs.writeFileSync(infoFile(p, plan.svc), `${JSON.stringify(info, null, 2)}\n`);
    log(`stack: started ${plan.label} (pid ${pid}), waiting for it to answer`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawned?.exited || spawned?.spawnError || !pidAlive(pid)) {
      removePidFiles(p, plan.svc);
      const how = spawned?.spawnError
        ? spawned.spawnError.message
        : spawned?.exited
          ? `exit ${spawned.exited.code ?? spawned.exited.signal}`
          : 'process gone';
      const last = lastLogLine(logPath);
      throw new StackError(`${plan.label} stopped during startup (${how})${last ? `: ${last}` : ''}; see ${logPath}`);
    }
    if (await ready()) return { pid, started: spawned !== null };
    if (Date.now() > deadline) {
      throw new StackError(
        `${plan.label} (pid ${pid}) did not answer on port ${plan.port} within ${Math.round(timeoutMs / 1000)} s: see ${logPath}`,
      );
    }
    await sleep(250);
  }
}

/**
 * One `up`/`down` at a time per state folder (test files run in parallel processes may all call
 * `up`): an exclusive-create lock file holding the owner's pid; a dead owner's lock is taken over.
 */
async function withStackLock<T>(
  p: Paths,
  opts: StackOptions,
  log: (line: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = path.join(p.pids, 'stack.lock');
  const deadline = Date.now() + 3 * (opts.timeoutMs ?? 60_000);
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: number;
    let ageMs: number;
    try {
      holder = Number(fs.readFileSync(lock, 'utf8').trim());
      ageMs = Date.now() - fs.statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    const holderKnown = Number.isInteger(holder) && holder > 0;
    if ((holderKnown && !pidAlive(holder)) || (!holderKnown && ageMs > 5_000)) {
      fs.rmSync(lock, { force: true }); // stale
      continue;
    }
    if (Date.now() > deadline) {
      throw new StackError(
        `another \`mergeflow stack\` (pid ${holder}) still holds ${lock}; wait for it, or remove the file`,
      );
    }
    if (!told) {
      log(`stack: waiting for another \`mergeflow stack\` command (pid ${holder}) on ${p.home}`);
      told = true;
    }
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    try {
      if (Number(fs.readFileSync(lock, 'utf8').trim()) === process.pid) fs.rmSync(lock, { force: true });
    } catch {
      /* already gone */
    }
  }
}

/** Starts (or keeps) the stack, waits until both services answer, creates the bucket. */
export async function stackUp(opts: StackOptions = {}): Promise<StackStatus> {
  const env = opts.env ?? process.env;
  const log = logger(opts);
  const p = paths(opts);
  const ports = resolvePorts(opts, p);
  const dyn = dynamicConfig(opts);
  for (const dir of [p.home, p.temporalDir, p.minioDir, p.logs, p.pids]) fs.mkdirSync(dir, { recursive: true });

  const missing = [p.temporalBin, p.minioBin].filter((f) => !binaryPresent(f));
  if (missing.length > 0) {
    if (opts.install === false) throw new StackError(`missing ${missing.join(', ')}: run infra/install.sh`);
    await runInstall(p, env, log);
    const still = [p.temporalBin, p.minioBin].filter((f) => !binaryPresent(f));
    if (still.length > 0) throw new StackError(`infra/install.sh did not produce ${still.join(', ')}`);
  }

  return withStackLock(p, opts, log, () => startServices(p, ports, dyn, opts, env, log));
}

async function startServices(
  p: Paths,
  ports: Ports,
  dyn: string[],
  opts: StackOptions,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<StackStatus> {
  await preflight(p, ports);
  const vars = writeStackEnv(p, ports);

  const temporalTask = ensureService(
    p,
    { svc: 'temporal', port: ports.temporal, label: LABEL.temporal },
    opts,
    async () => {
      const args = temporalArgs(p, ports.temporal, dyn);
      const spawned = await startDetached(p.temporalBin, args, temporalEnv(env), logFile(p, 'temporal'), p.home);
      return {
        spawned,
        info: {
          pid: spawned.pid,
          port: ports.temporal,
          bin: p.temporalBin,
          args,
          dynamicConfig: dyn,
          startedAt: new Date().toISOString(),
        },
      };
    },
    () => temporalReady(p, ports.temporal, env),
    log,
  ).then(async (r) => {
    await ensureSearchAttributes(p, ports.temporal, env);
    if (!r.started) {
      const info = readInfo(p, 'temporal');
      const had = info?.dynamicConfig ?? [];
      if (info && (had.length !== dyn.length || had.some((kv, i) => kv !== dyn[i]))) {
        log(
          `stack: warning: Temporal was already running with dynamic config [${had.join(', ')}], not [${dyn.join(', ')}]: ` +
            'run `mergeflow stack down` then `up` to apply it',
        );
      }
    }
    return r;
  });

  const s3Task = ensureService(
    p,
    { svc: 's3', port: ports.s3, label: LABEL.s3 },
    opts,
    async () => {
      const args = minioArgs(p, ports);
      const spawned = await startDetached(p.minioBin, args, minioEnv(env, vars), logFile(p, 's3'), p.home);
      return {
        spawned,
        info: {
          pid: spawned.pid,
          port: ports.s3,
          consolePort: ports.s3Console,
          bin: p.minioBin,
          args,
          startedAt: new Date().toISOString(),
        },
      };
    },
    () => s3Live(ports.s3),
    log,
  ).then(async (r) => {
    await createBucket(vars, ports.s3);
    return r;
  });

  const [t, s] = await Promise.allSettled([temporalTask, s3Task]);
  if (t.status === 'rejected') throw t.reason;
  if (s.status === 'rejected') throw s.reason;

  const status: StackStatus = {
    home: p.home,
    envFile: p.envFile,
    bucket: vars.MERGEFLOW_BUCKET,
    services: {
      temporal: serviceStatus(p, 'temporal', ports, t.value.pid, true),
      s3: serviceStatus(p, 's3', ports, s.value.pid, true),
    },
  };
  for (const line of formatStatus(status)) log(line);
  log(`stack: bucket    s3://${status.bucket}`);
  log(`stack: env       ${p.envFile} (AWS_ACCESS_KEY_ID=${maskSecret(vars.AWS_ACCESS_KEY_ID)}, secret not shown)`);
  return status;
}

/** Stops what `up` started (SIGTERM, then SIGKILL after stopTimeoutMs); keeps all data. */
export async function stackDown(opts: StackOptions = {}): Promise<StackStatus> {
  const log = logger(opts);
  const p = paths(opts);
  const ports = resolvePorts(opts, p);
  const stopTimeoutMs = opts.stopTimeoutMs ?? 15_000;
  const label = LABEL;

  const stopOne = async (svc: ServiceName): Promise<void> => {
    const recorded = readPid(p, svc);
    const pid = runningPid(p, svc);
    if (pid === null) {
      removePidFiles(p, svc);
      log(`stack: ${label[svc]} not running${recorded !== null ? ` (removed stale pid file, pid ${recorded})` : ''}`);
      return;
    }
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig); // its process group: `up` started it as a group leader
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          /* already gone */
        }
      }
    };
    signal('SIGTERM');
    const deadline = Date.now() + stopTimeoutMs;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
    if (pidAlive(pid)) {
      log(
        `stack: ${label[svc]} (pid ${pid}) ignored SIGTERM for ${Math.round(stopTimeoutMs / 1000)} s; sending SIGKILL`,
      );
      signal('SIGKILL');
      const killDeadline = Date.now() + 5_000;
      while (pidAlive(pid) && Date.now() < killDeadline) await sleep(100);
      if (pidAlive(pid)) throw new StackError(`${label[svc]} (pid ${pid}) survived SIGKILL`);
    }
    removePidFiles(p, svc);
    log(`stack: stopped ${label[svc]} (pid ${pid})`);
  };

  if (fs.existsSync(p.pids)) {
    await withStackLock(p, opts, log, async () => {
      const results = await Promise.allSettled([stopOne('temporal'), stopOne('s3')]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    });
  } else {
    log('stack: nothing to stop (no state folder yet)');
  }
  return {
    home: p.home,
    envFile: p.envFile,
    bucket: loadStackEnv(p.home).MERGEFLOW_BUCKET || DEFAULT_BUCKET,
    services: {
      temporal: serviceStatus(p, 'temporal', ports, null, false),
      s3: serviceStatus(p, 's3', ports, null, false),
    },
  };
}

/** Per service: running/stopped, pid, address, whether it answers. Prints unless quiet. */
export async function stackStatus(opts: StackOptions = {}): Promise<StackStatus> {
  const log = logger(opts);
  const p = paths(opts);
  const ports = resolvePorts(opts, p);
  const services = {} as Record<ServiceName, ServiceStatus>;
  await Promise.all(
    (['temporal', 's3'] as const).map(async (svc) => {
      const pid = runningPid(p, svc);
      const port =
        (pid !== null ? readInfo(p, svc)?.port : undefined) ?? (svc === 'temporal' ? ports.temporal : ports.s3);
      services[svc] = serviceStatus(p, svc, ports, pid, pid !== null && (await probe(svc, port)));
    }),
  );
  const status: StackStatus = {
    home: p.home,
    envFile: p.envFile,
    bucket: loadStackEnv(p.home).MERGEFLOW_BUCKET || DEFAULT_BUCKET,
    services,
  };
  for (const line of formatStatus(status)) log(line);
  return status;
}
