/**
 * The service processes: pid files (pids/<svc>.pid, + .json with the port and arguments used),
 * liveness, starting detached with the output in a log file, stopping, and the lock file that lets
 * one `up`/`down` run at a time.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LABEL } from './constants';
import { infoFile, pidFile, type Paths } from './paths';
import { StackError, type ServiceName, type StackOptions } from './types';

const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

export interface ServiceInfo {
  pid: number;
  port: number;
  consolePort?: number;
  bin: string;
  args: string[];
  dynamicConfig?: string[];
  startedAt: string;
}

export function readPid(p: Paths, svc: ServiceName): number | null {
  try {
    const n = Number(fs.readFileSync(pidFile(p, svc), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

export function readInfo(p: Paths, svc: ServiceName): ServiceInfo | null {
  try {
    return JSON.parse(fs.readFileSync(infoFile(p, svc), 'utf8')) as ServiceInfo;
  } catch {
    return null;
  }
}

export function removePidFiles(p: Paths, svc: ServiceName): void {
  fs.rmSync(pidFile(p, svc), { force: true });
  fs.rmSync(infoFile(p, svc), { force: true });
}

export function pidAlive(pid: number): boolean {
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

/** Whether `pid` is alive and (where /proc tells) runs one of the expected binaries, so a reused pid is not ours. */
function isOurProcess(pid: number, svc: ServiceName): boolean {
  if (!pidAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return pidAlive(pid); // no /proc: trust the pid file
  }
  const argv = cmdline.split('\0');
  const bin = path.basename(argv[0] ?? '');
  if (svc === 'temporal') return bin === 'temporal' && argv[1] === 'server';
  return (bin === 'weed' && argv[1] === 'mini') || (bin === 'minio' && argv[1] === 'server');
}

export function runningPid(p: Paths, svc: ServiceName): number | null {
  const pid = readPid(p, svc);
  if (pid === null) return null;
  return isOurProcess(pid, svc) ? pid : null;
}

function rotateLog(file: string): void {
  try {
    if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    /* no log yet */
  }
}

/** The last line the service wrote to its log (after our own header line), shortened, or ''. */
export function lastLogLine(file: string): string {
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

export interface Spawned {
  pid: number;
  /** Set once the process exits (while this Node process still watches it). */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  spawnError: Error | null;
}

export function startDetached(
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

export function execText(
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

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Stops one service that `up` started (SIGTERM, then SIGKILL after stopTimeoutMs); removes its pid files. */
export async function stopService(
  p: Paths,
  svc: ServiceName,
  stopTimeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  const recorded = readPid(p, svc);
  const pid = runningPid(p, svc);
  if (pid === null) {
    removePidFiles(p, svc);
    log(`stack: ${LABEL[svc]} not running${recorded !== null ? ` (removed stale pid file, pid ${recorded})` : ''}`);
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
    log(`stack: ${LABEL[svc]} (pid ${pid}) ignored SIGTERM for ${Math.round(stopTimeoutMs / 1000)} s; sending SIGKILL`);
    signal('SIGKILL');
    const killDeadline = Date.now() + 5_000;
    while (pidAlive(pid) && Date.now() < killDeadline) await sleep(100);
    if (pidAlive(pid)) throw new StackError(`${LABEL[svc]} (pid ${pid}) survived SIGKILL`);
  }
  removePidFiles(p, svc);
  log(`stack: stopped ${LABEL[svc]} (pid ${pid})`);
}

/**
 * One `up`/`down` at a time per state folder (test files run in parallel processes may all call
 * `up`): an exclusive-create lock file holding the owner's pid; a dead owner's lock is taken over.
 */
export async function withStackLock<T>(
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
