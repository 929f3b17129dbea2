/**
 * `mergeflow demo`: the main job end to end on the built-in mini-8 suite. Starts the local stack if needed
 * and a worker in this process; builds the suite into S3 (or reuses the one already there); runs weight
 * averaging, Task Arithmetic and TIES through Temporal; evaluates pretrained, individual and merged models on
 * the 8 target tasks; prints the baseline table and writes report.md/.json/.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import type { MergeResult } from '../../core/pipeline/run_types';
import { buildSuite } from '../../core/suite/build';
import { openSuite, Suite, SUITE_VERSION } from '../../core/suite/manifest';
import { PACK_FILE, unpackSuite } from '../../core/suite/pack';
import {
  adaMergingRow,
  MergeRunner,
  REPORT_MERGES,
  reportMarkdown,
  suiteReport,
  validitySection,
  writeReport,
} from '../../core/suite/report';
import { ensureBackend } from '../../core/eval/evaluate';
import { VERSION } from '../../core/version';
import { normalizeUri, storeFor, joinUri } from '../../core/store';
import { applyStackEnv, stackHome, stackStatus, stackUp } from '../../infra/stack';
import { createWorker } from '../../workers/worker';
import { setLogLevel } from '../../workers/logger';
import { connectClient } from '../client';
import { follow } from '../follow';
import { printJson } from '../format';
import { intArg } from '../args';
import { UsageError } from '../errors';
import { newRunId } from '../run_id';
import { startRun } from '../start_run';
import { buildProgress, reportProgress } from '../suite_progress';

interface DemoOptions {
  stack: boolean;
  size: string;
  seed: number;
  suite?: string;
  prefix?: string;
  rebuild?: boolean;
  build?: boolean;
  adamergingSteps: number;
  validity: boolean;
  out?: string;
  json?: boolean;
}

/** Where the committed suite packs live (core/suite/packs/<name>, see core/suite/pack.ts). */
const PACKS = path.resolve(__dirname, '..', '..', '..', 'core', 'suite', 'packs');

const log = (s: string) => process.stderr.write(s + '\n');

/** The suite at `uri` if a complete one (suite.json is written last) of this size, seed and version is there. */
async function reusableSuite(uri: string, size: string, seed: number): Promise<Suite | undefined> {
  if (!(await storeFor(uri).stat(joinUri(uri, 'suite.json')))) return undefined;
  const s = await openSuite(uri);
  const m = s.manifest;
  return m.size === size && m.seed === seed && m.build.mergeflow === VERSION ? s : undefined;
}

async function demoSuite(opts: DemoOptions, bucket: string): Promise<Suite> {
  if (opts.suite) return openSuite(opts.suite);
  const home = normalizeUri(opts.prefix ?? `s3://${bucket}/demo`);
  // the suite version is part of the folder name: a build of another version is never reused or overwritten
  const uri = joinUri(home, `mini-8-v${SUITE_VERSION}-${opts.size}-seed${opts.seed}`);
  const found = opts.rebuild ? undefined : await reusableSuite(uri, opts.size, opts.seed);
  if (found) {
    log(`using the suite built earlier at ${uri} (--rebuild builds it again)`);
    return found;
  }
  const pack = path.join(PACKS, `mini-8-v${SUITE_VERSION}-${opts.size}-seed${opts.seed}`);
  if (!opts.build && fs.existsSync(path.join(pack, PACK_FILE))) {
    log(`unpacking the committed suite ${path.relative(process.cwd(), pack)} into ${uri} (--build trains it instead)`);
    await unpackSuite(pack, uri);
    return openSuite(uri);
  }
  log(`building the mini-8 suite (${opts.size}, seed ${opts.seed}) into ${uri}`);
  const progress = buildProgress(process.stderr.isTTY === true);
  try {
    await buildSuite(uri, { seed: opts.seed, size: opts.size as 'small' | 'full', onEvent: progress.onEvent });
  } finally {
    progress.stop();
  }
  return openSuite(uri);
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'the main job end to end: put the mini-8 suite into S3, merge it through Temporal (weight averaging, ' +
        'Task Arithmetic, TIES, layer-wise AdaMerging), evaluate, print the table (starts the stack if needed)',
    )
    .option(
      '--size <size>',
      "suite size: 'full' (the benchmark; committed, unpacked in seconds) or 'small' (a tiny build for the machinery)",
      'full',
    )
    .option(
      '--seed <n>',
      'suite seed (seed 0 of the full suite is committed; other seeds are built, 7-14 min)',
      intArg('--seed'),
      0,
    )
    .option('--suite <uri>', 'use this existing suite instead of unpacking or building one')
    .option(
      '--prefix <uri>',
      'folder (any store URI) the demo keeps its suite and merges in (default s3://$MERGEFLOW_BUCKET/demo)',
    )
    .option('--rebuild', 'put the suite there again even if the demo did before')
    .option('--build', 'train the suite from its seed instead of unpacking the committed one')
    .option(
      '--adamerging-steps <n>',
      'Adam steps of the layer-wise AdaMerging row (0 leaves the row out)',
      intArg('--adamerging-steps'),
      // suite v5's four-layer steps take ~1.5 s in the demo's process: 100 keep the demo within 5 minutes
      100,
    )
    .option('--validity', 'also run the suite validity check (entropy vs error over 19 merges; a few minutes)', false)
    .option('--out <dir>', 'folder for report.md, report.json, report.png (default .mergeflow/demo)')
    .option('--json', 'print the report as JSON instead of Markdown')
    .option('--no-stack', 'use TEMPORAL_ADDRESS / AWS_ENDPOINT_URL_S3 as they are; do not start the local stack')
    .addHelpText(
      'after',
      '\nThe suite is kept at <prefix>/mini-8-v<version>-<size>-seed<seed>, so a second run only merges and\n' +
        'evaluates. The full suite of seed 0 is committed (core/suite/packs, models as F16) and unpacked in seconds;\n' +
        'the task data is rebuilt from the seed and checked against the packed hashes. --build trains it instead.\n' +
        'The small suite checks the machinery; its models are too small for the methods to differ.',
    )
    .action(async (opts: DemoOptions) => {
      if (opts.size !== 'small' && opts.size !== 'full')
        throw new UsageError(`--size must be 'small' or 'full', got '${opts.size}'`);
      if (opts.stack) {
        const s = await stackStatus({ quiet: true });
        if (s.services.temporal.state !== 'running' || s.services.s3.state !== 'running') await stackUp();
        applyStackEnv();
      }
      const bucket = process.env.MERGEFLOW_BUCKET ?? 'mergeflow';
      const { client, target } = await connectClient();
      if (!process.env.MERGEFLOW_LOG_LEVEL) setLogLevel('warn');
      const suite = await demoSuite(opts, bucket);
      if (suite.manifest.size === 'small' && !opts.json)
        log('note: the small suite exercises the machinery; `mergeflow demo --size full` gives the real table');
      await ensureBackend();

      const { worker, affinityWorker, connection } = await createWorker();
      const merge: MergeRunner = async (config, method) => {
        const runId = newRunId(`demo-${method}`);
        log(`${method}: workflow ${runId} -> ${config.output}`);
        const start = { taskQueue: target.taskQueue, workflowId: runId };
        const handle = await startRun(client, config, start);
        const r = await follow<MergeResult>(handle, {
          bar: process.stderr.isTTY === true,
          quiet: process.stderr.isTTY !== true,
        });
        log(`${method}: done, sha256 ${r.output.sha256.slice(0, 16)}…, manifest ${r.manifestUri}`);
      };
      let report;
      try {
        report = await affinityWorker.runUntil(
          worker.runUntil(
            suiteReport(suite.uri, {
              merge,
              merges:
                opts.adamergingSteps > 0 ? [...REPORT_MERGES, adaMergingRow(opts.adamergingSteps)] : REPORT_MERGES,
              validity: opts.validity,
              onEvent: opts.json ? undefined : reportProgress(),
            }),
          ),
        );
      } finally {
        await connection.close();
      }
      const outDir = normalizeUri(opts.out ?? path.join(stackHome(), 'demo'));
      const files = await writeReport(report, outDir);
      if (opts.json) printJson(report);
      else {
        process.stdout.write(reportMarkdown(report));
        if (report.validity) process.stdout.write(validitySection(report.validity));
        else
          log(
            `\nthe suite's validity check (does entropy track error?): mergeflow demo --validity, or mergeflow suite report ${suite.uri}`,
          );
        console.log(
          `\nwritten: ${files.md}, ${files.json}, ${files.png}${files.validityPng ? `, ${files.validityPng}` : ''}`,
        );
        console.log(`merged models: ${joinUri(suite.uri, 'merged')}/<method> (each with mergeflow.manifest.json)`);
      }
    });
}
