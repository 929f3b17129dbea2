/** Shared test plumbing: the local stack's settings, temp folders, unique S3 prefixes, running the CLI. */
import { spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyStackEnv } from '../../infra/stack';

applyStackEnv();
// mergeflow pins its AWS SDK (as cli/main.ts does, silence the notice about future Node versions)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(REPO, 'dist', 'cli', 'main.js');
export const BUCKET = process.env.MERGEFLOW_BUCKET ?? 'mergeflow';

const madeDirs: string[] = [];
let cleanupHooked = false;

/**
 * A fresh temp folder, removed when the test file's process exits (set MERGEFLOW_KEEP_TMP=1 to keep them
 * for a post-mortem): a merge test writes hundreds of MB, and repeated runs would otherwise fill the disk.
 */
export function tmpDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mergeflow-${label}-`));
  madeDirs.push(dir);
  if (!cleanupHooked && !process.env.MERGEFLOW_KEEP_TMP) {
    cleanupHooked = true;
    process.on('exit', () => {
      for (const d of madeDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true, maxRetries: 2 });
        } catch {
          // a folder still in use is left behind; it never fails a test
        }
      }
    });
  }
  return dir;
}

export function fileUri(p: string): string {
  return pathToFileURL(p).href;
}

export function uniq(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function s3Prefix(label: string): string {
  return `s3://${BUCKET}/test/${uniq(label)}`;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mergeflow ${args.join(' ')} timed out\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A `mergeflow worker` process on its own task queue. */
export function startWorker(taskQueue: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, MERGEFLOW_TASK_QUEUE: taskQueue, MERGEFLOW_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

export async function stopWorker(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function writeYaml(file: string, doc: unknown): string {
  const { stringify } = require('yaml') as typeof import('yaml');
  fs.writeFileSync(file, stringify(doc));
  return file;
}
