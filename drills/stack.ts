/**
 * The fault drills' own stack: a Temporal dev server and an S3 server in a temporary MERGEFLOW_HOME on ports of
 * their own (37233, 38233, 39000, 39001 unless MERGEFLOW_DRILL_PORTS says otherwise), because the drills stop
 * and restart servers. The binaries come from the usual bin folder; nothing of the shared stack is touched.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ListObjectsV2Command, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { loadStackEnv, stackDown, stackHome, stackUp, type StackOptions } from '../infra/stack';
import { paths } from '../infra/stack/paths';
import { stopService } from '../infra/stack/process';
import { sha256Of, storeFor } from '../core/store';
import { s3Client } from '../core/store/s3';
import { parseS3 } from '../core/store/uri';
import { WORKFLOW_BUNDLE_ENV, writeWorkflowBundle } from '../workers/workflow_bundle';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'dist', 'cli', 'main.js');
/** The installed binaries (read before MERGEFLOW_HOME is pointed at the drill's folder). */
const BIN = process.env.MERGEFLOW_BIN || path.join(stackHome(), 'bin');
const PORTS = (process.env.MERGEFLOW_DRILL_PORTS ?? '37233,38233,39000,39001').split(',').map(Number);

export function uniq(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A small seeded generator (mulberry32): the drills' kill points are reproducible from the seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export class DrillStack {
  readonly home = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-drills-'));
  readonly opts: StackOptions;
  connection?: Connection;
  client?: Client;
  private readonly workers = new Set<ChildProcess>();

  constructor() {
    const [temporalPort, temporalUiPort, s3Port, s3ConsolePort] = PORTS;
    this.opts = { home: this.home, binDir: BIN, temporalPort, temporalUiPort, s3Port, s3ConsolePort, quiet: true };
  }

  /** Starts the servers and points this process (and the workers it spawns) at them. */
  async up(): Promise<void> {
    const busy = [];
    for (const p of PORTS) if (!(await portFree(p))) busy.push(p);
    if (busy.length) {
      throw new Error(
        `drill ports ${busy.join(', ')} are in use: free them or set MERGEFLOW_DRILL_PORTS=T,UI,S3,S3CONSOLE`,
      );
    }
    await stackUp({ ...this.opts, install: false });
    // This process's S3 client and Temporal client, and every worker, use the drill stack only.
    Object.assign(process.env, loadStackEnv(this.home), { MERGEFLOW_HOME: this.home, MERGEFLOW_BIN: BIN });
    // one webpack bundle of the workflows for every worker: a restarted worker is ready in about a second
    const bundle = path.join(this.home, 'workflows-bundle.js');
    await writeWorkflowBundle(bundle);
    process.env[WORKFLOW_BUNDLE_ENV] = bundle;
    this.connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
    this.client = new Client({ connection: this.connection, namespace: 'default' });
  }

  /** Starts any stopped server again (same data folder, same database file). */
  async restart(): Promise<void> {
    await stackUp({ ...this.opts, install: false });
  }

  /** Stops one server (SIGTERM, then SIGKILL after 10 s), keeping its data. */
  async stop(svc: 'temporal' | 's3'): Promise<void> {
    await stopService(paths(this.opts), svc, 10_000, () => undefined);
  }

  /** A `mergeflow worker` process on `queue`; its Temporal identity is `<pid>@<host>`. */
  worker(queue: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, [CLI, 'worker'], {
      env: {
        ...process.env,
        MERGEFLOW_TASK_QUEUE: queue,
        MERGEFLOW_LOG_LEVEL: 'error',
        MERGEFLOW_TEMPORAL_LOG_LEVEL: 'ERROR',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', () => undefined); // a stopped server makes workers log; not needed here
    this.workers.add(child);
    child.once('exit', () => this.workers.delete(child));
    return child;
  }

  identity(child: ChildProcess): string {
    return `${child.pid}@${os.hostname()}`;
  }

  /** Ends every worker this stack spawned, stops the servers and deletes the temporary folder. */
  async down(): Promise<void> {
    for (const w of [...this.workers]) {
      const gone = new Promise((r) => w.once('exit', r));
      w.kill('SIGKILL');
      await gone;
    }
    await this.connection?.close().catch(() => undefined);
    await stackDown({ ...this.opts }).catch(() => undefined);
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

/** A workflow's result, waiting through a Temporal server that is away for a while. */
export async function resultThroughOutages<T>(h: WorkflowHandle, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return (await h.result()) as T;
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'WorkflowFailedError' || Date.now() > end) throw e;
      await sleep(1000); // the server is restarting: ask again
    }
  }
}

/** Every key under an s3:// prefix. */
export async function listKeys(prefix: string): Promise<string[]> {
  const { bucket, key } = parseS3(prefix);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3Client().send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) keys.push(o.Key!.slice(key.length));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/** Multipart uploads started under a prefix and never completed nor aborted. */
export async function openUploads(prefix: string): Promise<string[]> {
  const { bucket, key } = parseS3(prefix);
  const r = await s3Client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (r.Uploads ?? []).map((u) => u.Key!);
}

/** sha256 of the object's bytes as the store holds them now. */
export async function objectSha256(uri: string): Promise<string> {
  const stat = await storeFor(uri).stat(uri);
  if (!stat) throw new Error(`${uri}: no such object`);
  return sha256Of(uri, stat.size);
}
