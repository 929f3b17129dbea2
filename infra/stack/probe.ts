/**
 * Whether ports are free and services answer: the checks before `up` starts anything, the quick
 * probes of `status`, and the wait until a (newly started) service answers.
 * No Temporal SDK import: readiness is checked with the temporal CLI and plain TCP/HTTP.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { HOST, LABEL, PORT_ENV } from './constants';
import { infoFile, logFile, pidFile, type Paths } from './paths';
import type { Ports } from './ports';
import {
  execText,
  lastLogLine,
  pidAlive,
  readInfo,
  removePidFiles,
  runningPid,
  sleep,
  type ServiceInfo,
  type Spawned,
} from './process';
import { s3HealthPath, s3ServerOfBin, temporalClientArgs, temporalEnv, type S3Server } from './services';
import { StackError, type ServiceName, type StackOptions } from './types';

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

export async function s3Live(port: number, server: S3Server, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}${s3HealthPath(server)}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.status === 200;
  } catch {
    return false;
  }
}

export async function temporalReady(p: Paths, port: number, env: NodeJS.ProcessEnv): Promise<boolean> {
  if (!(await tcpAnswers(port))) return false;
  const res = await execText(
    p.temporalBin,
    ['operator', 'namespace', 'describe', ...temporalClientArgs(port)],
    temporalEnv(env),
    10_000,
  );
  return res.ok;
}

/** The quick probe of `status` (Temporal: TCP connect; S3: the health URL of the server that runs). */
export async function probe(p: Paths, svc: ServiceName, port: number): Promise<boolean> {
  if (svc === 'temporal') return tcpAnswers(port);
  const bin = readInfo(p, 's3')?.bin;
  return s3Live(port, bin ? s3ServerOfBin(bin) : 'seaweedfs');
}

/** `n` distinct loopback ports free right now (the OS picks them). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.once('error', reject);
          srv.listen({ host: HOST, port: 0, exclusive: true }, () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Before anything starts: a service of ours that runs must run on the requested port, and every port
 * a service still has to take must be free.
 */
export async function preflight(p: Paths, ports: Ports): Promise<void> {
  const wanted: { svc: ServiceName; port: number; env: string; label: string }[] = [
    { svc: 'temporal', port: ports.temporal, env: PORT_ENV.temporal, label: 'Temporal' },
    { svc: 's3', port: ports.s3, env: PORT_ENV.s3, label: 'S3' },
    { svc: 's3', port: ports.s3Console, env: PORT_ENV.s3Console, label: 'S3 console' },
    { svc: 'temporal', port: ports.temporalUi, env: PORT_ENV.temporalUi, label: 'Temporal UI' },
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

export interface StartPlan {
  svc: ServiceName;
  port: number;
  label: string;
}

/**
 * Starts the service with `start` unless ours already runs (recording its pid files), then waits until
 * `ready` says it answers; fails when the process dies first or the wait passes opts.timeoutMs.
 */
export async function ensureService(
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
