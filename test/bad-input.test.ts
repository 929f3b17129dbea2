/**
 * The bad-input catalogue (test/bad_inputs/cases.ts, documented in docs/bad-inputs.md): each case runs the real
 * `mergeflow` CLI against the real stack and must print its exact message, exit with its code, and lose nothing:
 * inputs keep their bytes and mtimes, nothing appears under the output, and no workflow is left running.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { WorkflowNotFoundError } from '@temporalio/client';
import { closeClient, connectClient } from '../cli/client';
import { storeFor } from '../core/store';
import { CASES } from './bad_inputs/cases';
import { buildFixture, Fixture } from './bad_inputs/fixture';
import { DOC_PATH, renderDoc } from './bad_inputs/doc';
import { CaseRun, runCase, templateRegex } from './bad_inputs/run_case';
import { startWorker, stopWorker, uniq } from './helpers/env';

/** CLI calls at once (each is a Node process; the stack and the worker are shared). */
const PARALLEL = 4;
const queue = uniq('bad');
const env = { MERGEFLOW_TASK_QUEUE: queue };
let worker: ChildProcess;
let fx: Fixture;

type Snapshot = Map<string, string>;

/** sha256 and mtime of every file under the given folders. */
function snapshotFiles(...dirs: string[]): Snapshot {
  const snap: Snapshot = new Map();
  for (const d of dirs) {
    for (const f of fs.readdirSync(d, { recursive: true }) as string[]) {
      const p = path.join(d, f);
      const st = fs.statSync(p);
      if (!st.isFile()) continue;
      snap.set(p, `${createHash('sha256').update(fs.readFileSync(p)).digest('hex')} ${st.mtimeMs}`);
    }
  }
  return snap;
}

async function snapshotS3(prefix: string): Promise<Snapshot> {
  const store = storeFor(prefix);
  const snap: Snapshot = new Map();
  for (const uri of await store.list(prefix)) {
    const st = await store.stat(uri);
    snap.set(uri, `${st?.size} ${st?.etag ?? ''}`);
  }
  return snap;
}

/** Files under a folder, relative to it (none when the folder does not exist). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

async function pool<T, R>(items: readonly T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i]);
      }
    }),
  );
  return out;
}

let runs: Map<string, CaseRun>;
let inputsBefore: Snapshot;
let s3Before: Snapshot;

before(async () => {
  worker = startWorker(queue);
  fx = await buildFixture();
  inputsBefore = snapshotFiles(path.join(fx.dir, 'in'), path.join(fx.dir, 'ada'));
  s3Before = await snapshotS3(`${fx.s3}/in/`);
  const results = await pool(
    CASES,
    PARALLEL,
    async (c) => [c.id, await runCase(fx, c, uniq(`bad-${c.id}`), env)] as const,
  );
  runs = new Map(results);
});

after(async () => {
  await stopWorker(worker);
  await closeClient();
});

test('the catalogue holds at least 40 cases with unique ids, and docs/bad-inputs.md is generated from it', async () => {
  assert.ok(CASES.length >= 40, `${CASES.length} cases`);
  assert.equal(new Set(CASES.map((c) => c.id)).size, CASES.length, 'unique ids');
  const doc = fs.readFileSync(DOC_PATH, 'utf8');
  assert.equal(doc, await renderDoc(), "docs/bad-inputs.md is stale: run 'node dist/test/bad_inputs/doc.js --write'");
});

for (const c of CASES) {
  test(`${c.id}: ${c.input}`, async () => {
    const r = runs.get(c.id)!;
    const stderr = r.result.stderr.trimEnd();
    // `run --wait` reports the phases it saw before the failure; the message is the last line
    const lines = stderr.split('\n');
    const message = c.when === 'in the run' ? lines.pop()! : stderr;
    if (c.when === 'in the run') for (const l of lines) assert.match(l, /^\[[^\]]+\] [a-z-]+ \(\d+\/\d+\)$/);
    assert.match(message, templateRegex(c.stderr, r.vars), `stderr of ${c.id}`);
    assert.equal(r.result.code, c.exit, `exit code; stderr: ${stderr}`);
    assert.equal(r.result.stdout, '', 'nothing on stdout');
    assert.deepEqual(r.own.after, r.own.before, "the case's own file and config are unchanged");
    // nothing under the output's name: no object, no manifest, no partial file (a failed run keeps its work only)
    const outDir = path.dirname(r.vars.out);
    const written = filesUnder(outDir).filter((f) => !f.startsWith('.mergeflow-work'));
    assert.deepEqual(written, [], 'nothing written beside the output');
    if (c.when === 'before start') assert.deepEqual(filesUnder(outDir), [], 'no work files either');
    if (r.runId) {
      const { client } = await connectClient();
      const handle = client.workflow.getHandle(r.runId);
      if (c.when === 'before start') {
        await assert.rejects(handle.describe(), WorkflowNotFoundError, 'no workflow was started');
      } else {
        assert.equal((await handle.describe()).status.name, 'FAILED', 'the run failed (not running or retrying)');
      }
    }
  });
}

test('the inputs were not touched: same bytes and mtimes, local and in S3', async () => {
  assert.deepEqual(snapshotFiles(path.join(fx.dir, 'in'), path.join(fx.dir, 'ada')), inputsBefore);
  assert.deepEqual(await snapshotS3(`${fx.s3}/in/`), s3Before);
  assert.deepEqual(await storeFor(fx.s3).list(`${fx.s3}/out/`), []);
});
