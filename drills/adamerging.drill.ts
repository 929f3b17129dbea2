/**
 * Fault drill for AdaMerging on its own stack (drills/stack.ts): a worker gets SIGTERM mid-epoch with a short
 * MERGEFLOW_SHUTDOWN_GRACE, so the grace runs out inside the epoch: the epoch writes its state at the step it
 * reached and the worker exits 0; a new worker resumes from that state, and λ is bit-identical to the
 * in-process reference with Adam.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../core/config/load';
import { OptimizerStep, runAdaMergingLocal } from '../core/merge/adamerging/local_run';
import type { AdaResult } from '../core/merge/adamerging/run_types';
import { ADAM_DEFAULTS, adamInit, AdamState, adamStep } from '../core/optim/adam';
import { fromFloat64, SafetensorsFile } from '../core/safetensors';
import { storeFor } from '../core/store';
import { initBackend } from '../core/tensor/backend';
import { writeAdaFixture, type AdaFixture } from '../core/synthetic_adamerging';
import { DrillStack, resultThroughOutages, uniq, waitFor } from './stack';
import { epochResults } from '../test/helpers/history';

const STEPS = 120;
const PER_EPOCH = 60;
const EVERY = 5;
const SEED = 4;
const LR = 0.02;

const stack = new DrillStack();
const root = `s3://mergeflow/drills/${uniq('ada')}`;
let fx: AdaFixture;
let reference: Float64Array;

before(async () => {
  await stack.up();
  fx = await writeAdaFixture(`${root}/in`);
  await initBackend(undefined, () => undefined);
  let st: AdamState | undefined;
  const adam: OptimizerStep = (lambda, grad) => {
    st = adamStep(st ?? adamInit(Float64Array.from(lambda)), grad, { ...ADAM_DEFAULTS, lr: LR });
    return Float32Array.from(st.params);
  };
  await runAdaMergingLocal({
    pretrained: fx.pretrained,
    tasks: fx.tasks,
    granularity: 'layer',
    steps: STEPS,
    seed: SEED,
    batchSize: 4,
    optimizer: adam,
  });
  reference = st!.params;
});

after(async () => {
  await stack.down();
});

test(
  'drill: SIGTERM mid-epoch with a short grace: the epoch checkpoints, the worker exits 0, λ is bit-identical',
  { timeout: 300_000 },
  async (t) => {
    const queue = uniq('drill-ada');
    const config = validateConfig(
      {
        method: 'adamerging',
        base: fx.pretrained,
        tasks: fx.tasks,
        output: `${root}/out`,
        parameters: {
          granularity: 'layer',
          steps: STEPS,
          steps_per_epoch: PER_EPOCH,
          checkpoint_every: EVERY,
          batch_size: 4,
          seed: SEED,
          lr: LR,
        },
      },
      'drill',
    );
    const first = stack.worker(queue, { MERGEFLOW_SHUTDOWN_GRACE: '200ms' });
    const h = await stack.client!.workflow.start('adaMergingRun', {
      taskQueue: queue,
      workflowId: uniq('drill-ada'),
      args: [{ config, heartbeatTimeoutSeconds: 5, affinityTimeoutSeconds: 3 }],
    });
    // inside the first epoch: its second checkpoint is written
    // the work prefix sits beside the output folder (core/resume/work.ts)
    const mark = `${root}/.mergeflow-work/${h.workflowId}/state/step-${String(2 * EVERY).padStart(8, '0')}.safetensors`;
    await waitFor(async () => (await storeFor(mark).stat(mark)) !== null, 120_000, `the step-${2 * EVERY} checkpoint`);
    const exit = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    first.kill('SIGTERM');
    assert.equal(await exit, 0, 'the worker exits cleanly after SIGTERM');
    stack.worker(queue);
    const r = await resultThroughOutages<AdaResult>(h, 240_000);
    const f = await SafetensorsFile.open(r.lambdaSafetensors);
    const got = Buffer.from(await f.readBytes('lambda'));
    assert.ok(got.equals(Buffer.from(fromFloat64(reference))), 'λ is bit-identical to the in-process reference');
    const epochs = await epochResults(h);
    const resumed = epochs.find((e) => e.resumedFrom > 0 && e.resumedFrom < PER_EPOCH);
    assert.ok(
      resumed,
      `the first epoch resumed from a checkpoint: ${JSON.stringify(epochs.map((e) => e.resumedFrom))}`,
    );
    assert.ok(resumed.resumedFrom >= 2 * EVERY, 'the stopped epoch kept the steps it had checkpointed');
    t.diagnostic(`SIGTERM after step ${2 * EVERY}; the retry resumed from step ${resumed.resumedFrom}`);
  },
);
