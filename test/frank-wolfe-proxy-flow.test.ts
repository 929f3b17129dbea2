/**
 * FW-Soft with `step_objective: proxy` as a durable run against the real Temporal and S3 servers: the step sizes
 * are learned on the labeled proxy (train) rows, so a config whose targets name no test split at all runs to the
 * end, and naming a test split (other rows, other labels) changes no bit of the model. Both runs equal the
 * in-process reference bit for bit (same λ, same θT), which differs from the entropy-learned model.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { FrankWolfeConfig } from '../core/config/schema';
import { FwLocalResult, runFrankWolfeLocal } from '../core/merge/frank_wolfe/local_run';
import type { FwResult } from '../core/merge/frank_wolfe/run_types';
import { Checkpoint } from '../core/safetensors';
import { initBackend } from '../core/tensor/backend';
import { AdaFixture, writeAdaFixture } from '../core/synthetic_adamerging';
import { temporalTarget } from '../workers/temporal_config';
import { s3Prefix, startWorker, stopWorker, uniq } from './helpers/env';

const prefix = s3Prefix('fw-proxy-flow');
const queue = uniq('fw-proxy-flow');
let worker: ChildProcess | undefined;
let fx: AdaFixture;
/** Datasets of the same image size and classes, other pixels and labels: the targets' test splits. */
let testSplits: AdaFixture;
let connection: Connection;
let client: Client;
let proxyRef: FwLocalResult;
let entropyRef: FwLocalResult;

const SOFT = {
  variant: 'soft',
  oracle: 'task',
  oracle_basis: 'task_vectors',
  start: 'pretrained',
  iterations: 2,
  proxy_samples: 8,
  adamerging_steps: 20,
  adamerging_batch_size: 4,
  adamerging_lr: 0.02,
  seed: 7,
} as const;

type Target = { name: string; head: string; proxy: string; data?: string };
const trainOnly = (): Target[] => fx.tasks.slice(0, 2).map((t) => ({ name: t.name, head: t.head, proxy: t.data }));
const withTest = (): Target[] => trainOnly().map((t, k) => ({ ...t, data: testSplits.tasks[k].data }));

before(async () => {
  fx = await writeAdaFixture(`${prefix}/in`, { tasks: 4, labeled: true, rows: 12 });
  testSplits = await writeAdaFixture(`${prefix}/test`, { seed: 99, tasks: 2, labeled: true, rows: 10 });
  await initBackend(undefined, () => undefined);
  const local = (params: Record<string, unknown>, targets: Target[], label: string) =>
    runFrankWolfeLocal({
      pretrained: fx.pretrained,
      pool: fx.tasks.map((t) => ({ name: t.name, model: t.model })),
      targets,
      params,
      workDir: `${prefix}/local-${label}`,
    });
  proxyRef = await local({ ...SOFT, step_objective: 'proxy' }, trainOnly(), 'proxy');
  entropyRef = await local({ ...SOFT, step_objective: 'entropy' }, withTest(), 'entropy');
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  client = new Client({ connection, namespace: t.namespace });
  worker = startWorker(queue);
});

after(async () => {
  if (worker) await stopWorker(worker, 'SIGKILL');
  await connection?.close();
});

async function run(label: string, targets: Target[]): Promise<FwResult> {
  const config = validateConfig(
    {
      method: 'frank_wolfe',
      base: fx.pretrained,
      pool: fx.tasks.map((t) => ({ name: t.name, checkpoint: t.model })),
      targets,
      output: `${prefix}/out/${label}`,
      shards: 2,
      parameters: { ...SOFT, step_objective: 'proxy' },
    },
    'test',
  ) as FrankWolfeConfig;
  const h = await client.workflow.start('frankWolfeRun', {
    taskQueue: queue,
    workflowId: uniq(`fw-proxy-${label}`),
    args: [{ config, heartbeatTimeoutSeconds: 4 }],
  });
  return (await h.result()) as FwResult;
}

async function assertEqualsReference(r: FwResult, what: string): Promise<void> {
  const ck = await Checkpoint.open(r.output.uri);
  for (const n of proxyRef.tensors) {
    const got = Buffer.from((await ck.readFloat32(n)).buffer);
    assert.ok(got.equals(Buffer.from(proxyRef.theta[n].buffer)), `${what}: tensor ${n} bit-identical to the reference`);
  }
  assert.equal(r.iterations, SOFT.iterations);
}

test(
  'step_objective proxy through Temporal and S3: no test split needed, a test split changes no bit; θT as in process',
  { timeout: 300_000 },
  async (t) => {
    // the option is not vacuous: entropy on the test inputs learns other step sizes, hence another model
    const differs = proxyRef.tensors.some(
      (n) => !Buffer.from(proxyRef.theta[n].buffer).equals(Buffer.from(entropyRef.theta[n].buffer)),
    );
    assert.ok(differs, 'the proxy-learned model equals the entropy-learned one');
    const soft = proxyRef.iterations.map((i) => i.softLosses!);
    assert.ok(
      soft.every((l) => l.length === SOFT.adamerging_steps && l.every(Number.isFinite)),
      'one finite loss per Adam step',
    );

    const noTest = await run('train-only', trainOnly());
    await assertEqualsReference(noTest, 'targets without a test split');
    assert.equal(noTest.accuracy, undefined, 'nothing to evaluate without a labeled test split');

    const test2 = await run('with-test', withTest());
    await assertEqualsReference(test2, 'targets with a test split');
    assert.equal(test2.output.sha256, noTest.output.sha256, 'the same model bytes twice');
    assert.ok(test2.accuracy, 'the test split is read only to evaluate the result');
    t.diagnostic(
      `picks ${JSON.stringify(proxyRef.iterations.map((i) => i.picks))}; last cross-entropy per iteration ${soft.map((l) => l.at(-1))}`,
    );
  },
);
