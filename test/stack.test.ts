/**
 * The local stack against the real processes (temporal dev server + SeaweedFS, or MinIO where installed by
 * the go-install fallback), in a temporary state folder on non-default ports so a stack already running on
 * this machine is left alone. Binaries come from the usual bin folder (MERGEFLOW_BIN, else
 * <MERGEFLOW_HOME or repo/.mergeflow>/bin); when they are missing, `up` runs infra/install.sh (seconds with
 * pip, minutes with go install). Fails at once when neither pip nor Go can install them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import {
  loadStackEnv,
  stackDown,
  stackHome,
  stackStatus,
  stackUp,
  StackError,
  type StackOptions,
} from '../infra/stack';

const binDir = process.env.MERGEFLOW_BIN || path.join(stackHome(), 'bin');
const haveBinaries =
  fs.existsSync(path.join(binDir, 'temporal')) && ['weed', 'minio'].some((b) => fs.existsSync(path.join(binDir, b)));
const havePip = spawnSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' }).status === 0;
const haveGo = spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
if (!haveBinaries && !havePip && !haveGo) {
  throw new Error(`no binaries in ${binDir} and neither pip nor Go to install them: run infra/install.sh`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** 17233/19000/19001/18233 when free, else ports the OS hands out. */
async function pickPorts(): Promise<[number, number, number, number]> {
  const preferred: [number, number, number, number] = [17233, 19000, 19001, 18233];
  if ((await Promise.all(preferred.map(portFree))).every(Boolean)) return preferred;
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  return [...ports] as [number, number, number, number];
}

/** Alive and not a zombie (a child of this process that exited stays a zombie until Node reaps it). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
};

let home = '';
let opts: StackOptions;
let firstPids: { temporal: number; s3: number };
const lines: string[] = [];
const workflowId = `stack-test-${process.pid}-${Date.now()}`;

function s3Client(): { s3: S3Client; bucket: string } {
  const env = loadStackEnv(home);
  const s3 = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  return { s3, bucket: env.MERGEFLOW_BUCKET };
}

async function withTemporal<T>(fn: (client: Client, connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: loadStackEnv(home).TEMPORAL_ADDRESS, connectTimeout: 10_000 });
  try {
    return await fn(new Client({ connection, namespace: 'default' }), connection);
  } finally {
    await connection.close();
  }
}

before(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-stack-'));
  const [temporalPort, s3Port, s3ConsolePort, temporalUiPort] = await pickPorts();
  opts = {
    home,
    binDir,
    temporalPort,
    s3Port,
    s3ConsolePort,
    temporalUiPort,
    temporalDynamicConfig: ['limit.historyCount.suggestContinueAsNew=40'],
    log: (line) => lines.push(line),
  };
});

after(async () => {
  if (!home) return;
  await stackDown({ ...opts, stopTimeoutMs: 5_000 }).catch(() => undefined);
  fs.rmSync(home, { recursive: true, force: true });
});

test('up starts both services and writes stack.env', { timeout: haveBinaries ? 120_000 : 30 * 60_000 }, async () => {
  const t0 = Date.now();
  // Two at once (as parallel test files would): one starts the services, the other waits and reuses them.
  const [st, twin] = await Promise.all([stackUp(opts), stackUp({ ...opts, quiet: true })]);
  console.log(`# stack up (cold start, two concurrent calls) took ${Date.now() - t0} ms`);
  assert.equal(twin.services.temporal.pid, st.services.temporal.pid);
  assert.equal(twin.services.s3.pid, st.services.s3.pid);
  assert.equal(st.services.temporal.state, 'running');
  assert.equal(st.services.s3.state, 'running');
  assert.ok(st.services.temporal.pid && alive(st.services.temporal.pid));
  assert.ok(st.services.s3.pid && alive(st.services.s3.pid));
  firstPids = { temporal: st.services.temporal.pid, s3: st.services.s3.pid };

  const envFile = path.join(home, 'stack.env');
  assert.equal(fs.statSync(envFile).mode & 0o777, 0o600);
  const env = loadStackEnv(home);
  assert.equal(env.TEMPORAL_ADDRESS, `127.0.0.1:${opts.temporalPort}`);
  assert.equal(env.TEMPORAL_NAMESPACE, 'default');
  assert.equal(env.AWS_ENDPOINT_URL_S3, `http://127.0.0.1:${opts.s3Port}`);
  assert.equal(env.AWS_REGION, 'us-east-1');
  assert.equal(env.MERGEFLOW_BUCKET, 'mergeflow');
  assert.match(env.AWS_ACCESS_KEY_ID, /^[A-Z0-9]{20}$/);
  assert.ok(env.AWS_SECRET_ACCESS_KEY.length >= 32);
  // The secret never reaches the printed lines.
  assert.ok(!lines.join('\n').includes(env.AWS_SECRET_ACCESS_KEY));
  assert.ok(!lines.join('\n').includes(env.AWS_ACCESS_KEY_ID));
  assert.equal(env.MERGEFLOW_TEMPORAL_UI_URL, `http://127.0.0.1:${opts.temporalUiPort}`);
  for (const f of ['temporal/dev.db', 'logs/temporal.log', 'logs/s3.log', 'pids/temporal.pid', 'pids/s3.pid']) {
    assert.ok(fs.existsSync(path.join(home, f)), f);
  }
  const info = JSON.parse(fs.readFileSync(path.join(home, 'pids/temporal.json'), 'utf8'));
  assert.ok(info.args.includes('limit.historyCount.suggestContinueAsNew=40'));
});

test('up again leaves the running services alone', { timeout: 60_000 }, async () => {
  const credsBefore = loadStackEnv(home).AWS_SECRET_ACCESS_KEY;
  const t0 = Date.now();
  const st = await stackUp(opts);
  console.log(`# stack up (already running) took ${Date.now() - t0} ms`);
  assert.equal(st.services.temporal.pid, firstPids.temporal);
  assert.equal(st.services.s3.pid, firstPids.s3);
  assert.equal(loadStackEnv(home).AWS_SECRET_ACCESS_KEY, credsBefore);
});

test('status says running', { timeout: 30_000 }, async () => {
  const st = await stackStatus({ ...opts, quiet: true });
  for (const svc of ['temporal', 's3'] as const) {
    assert.equal(st.services[svc].state, 'running', svc);
    assert.equal(st.services[svc].answering, true, svc);
    assert.equal(st.services[svc].pid, firstPids[svc], svc);
  }
  assert.equal(st.services.temporal.address, `127.0.0.1:${opts.temporalPort}`);
  assert.equal(st.services.s3.address, `http://127.0.0.1:${opts.s3Port}`);
  assert.equal(st.services.s3.console, `http://127.0.0.1:${opts.s3ConsolePort}`);
  assert.equal(st.services.temporal.ui, `http://127.0.0.1:${opts.temporalUiPort}`);
  // The Temporal Web UI and the S3 console answer.
  for (const url of [st.services.temporal.ui, st.services.s3.console]) {
    const res = await fetch(url!, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    assert.equal(res.status, 200, url);
  }
});

test('the bucket exists and Temporal answers with our search attributes', { timeout: 30_000 }, async () => {
  const { s3, bucket } = s3Client();
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
  await withTemporal(async (client, connection) => {
    const info = await connection.workflowService.getSystemInfo({});
    assert.ok(info.serverVersion, 'server version');
    const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert.equal(sa.customAttributes?.MergeStatus, KEYWORD);
    assert.equal(sa.customAttributes?.MergeMethod, KEYWORD);
    // No worker: the execution just stays open, which is enough to check persistence across a restart.
    await client.workflow.start('stackTestNoSuchWorkflow', {
      taskQueue: `stack-test-${process.pid}`,
      workflowId,
      args: [],
    });
  });
});

test('a port taken by another program fails with a clear error', { timeout: 30_000 }, async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const taken = (blocker.address() as net.AddressInfo).port;
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-stack-other-'));
  try {
    const [s3Port, s3ConsolePort, temporalUiPort] = [await freePort(), await freePort(), await freePort()];
    await assert.rejects(
      stackUp({
        home: other,
        binDir,
        temporalPort: taken,
        s3Port,
        s3ConsolePort,
        temporalUiPort,
        install: false,
        quiet: true,
      }),
      (err: Error) => {
        assert.ok(err instanceof StackError);
        assert.match(err.message, new RegExp(`port ${taken}`));
        assert.match(err.message, /MERGEFLOW_TEMPORAL_PORT/);
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      },
    );
    // Nothing was started for the other folder.
    const st = await stackStatus({ home: other, binDir, quiet: true });
    assert.equal(st.services.temporal.state, 'stopped');
    assert.equal(st.services.s3.state, 'stopped');
  } finally {
    blocker.close();
    await stackDown({ home: other, binDir, quiet: true }).catch(() => undefined);
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('data survives down and up', { timeout: 120_000 }, async () => {
  const key = `stack-test/${process.pid}.txt`;
  const body = `hello ${Date.now()}`;
  {
    const { s3, bucket } = s3Client();
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    } finally {
      s3.destroy();
    }
  }
  let t0 = Date.now();
  await stackDown(opts);
  console.log(`# stack down took ${Date.now() - t0} ms`);
  assert.ok(!alive(firstPids.temporal));
  assert.ok(!alive(firstPids.s3));
  t0 = Date.now();
  const st = await stackUp(opts);
  console.log(`# stack up (restart, existing data) took ${Date.now() - t0} ms`);
  assert.notEqual(st.services.temporal.pid, firstPids.temporal);
  {
    const { s3, bucket } = s3Client();
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(await got.Body?.transformToString(), body);
    } finally {
      s3.destroy();
    }
  }
  await withTemporal(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'RUNNING');
    await handle.terminate('stack test done');
  });
});

test('down stops both and status says stopped', { timeout: 60_000 }, async () => {
  const before = await stackStatus({ ...opts, quiet: true });
  const pids = [before.services.temporal.pid, before.services.s3.pid];
  await stackDown(opts);
  for (const pid of pids) assert.ok(pid !== null && !alive(pid), `pid ${pid} gone`);
  const st = await stackStatus({ ...opts, quiet: true });
  for (const svc of ['temporal', 's3'] as const) {
    assert.equal(st.services[svc].state, 'stopped', svc);
    assert.equal(st.services[svc].pid, null, svc);
    assert.equal(st.services[svc].answering, false, svc);
  }
  assert.ok(!fs.existsSync(path.join(home, 'pids/temporal.pid')));
  assert.ok(!fs.existsSync(path.join(home, 'pids/s3.pid')));
  // Data stays.
  assert.ok(fs.existsSync(path.join(home, 'temporal/dev.db')));
  assert.ok(fs.existsSync(path.join(home, 'stack.env')));
  // A second down is harmless.
  await stackDown({ ...opts, quiet: true });
});
