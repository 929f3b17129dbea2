/**
 * An AdaMerging epoch without Temporal: stopped mid-epoch and resumed from its checkpoint it ends with the same
 * state bytes and losses as an uninterrupted epoch; a checkpoint of a step has the same bytes whoever writes
 * it; the session cache key follows the inputs' content.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateConfig } from '../core/config/load';
import type { AdamergingConfig } from '../core/config/schema';
import { EpochStoppedError, latestCheckpoint, runEpoch } from '../core/merge/adamerging/epoch';
import type { AdaPlan } from '../core/merge/adamerging/run_types';
import { stateKey } from '../core/merge/adamerging/run_types';
import { AdaSession, disposeSession, openSession, sessionKey } from '../core/merge/adamerging/session';
import { planAdaMerging } from '../core/merge/adamerging/validate';
import { storeFor } from '../core/store';
import { writeAdaFixture } from '../core/synthetic_adamerging';
import { initBackend } from '../core/tensor/backend';
import { fileUri, tmpDir } from './helpers/env';

let dir: string;
let session: AdaSession;
const plans: AdaPlan[] = [];

async function plan(label: string): Promise<AdaPlan> {
  const fx = await writeAdaFixture(fileUri(path.join(dir, 'in')), { seed: 9 });
  const cfg = validateConfig(
    {
      method: 'adamerging',
      base: fx.pretrained,
      tasks: fx.tasks,
      output: fileUri(path.join(dir, label)),
      parameters: { granularity: 'task', steps: 6, batch_size: 4, checkpoint_every: 2, lr: 0.05 },
    },
    'test',
  ) as AdamergingConfig;
  const p = await planAdaMerging(cfg, `run-${label}`);
  plans.push(p);
  return p;
}

const bytes = async (uri: string) => Buffer.from(await storeFor(uri).readAll(uri));

before(async () => {
  dir = tmpDir('ada-epoch');
  await initBackend(undefined, () => undefined);
});
after(() => {
  if (session) disposeSession(session);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('stopped at step 3 and resumed from its checkpoint = one uninterrupted epoch, byte for byte', async () => {
  const a = await plan('a');
  const b = { ...(await plan('b')), runId: a.runId };
  session = await openSession(a, await sessionKey(a));
  const whole = await runEpoch(session, a, { fromStep: 0, steps: 6 });
  assert.equal(whole.step, 6);
  assert.equal(whole.resumedFrom, 0);

  let n = 0;
  await assert.rejects(
    runEpoch(session, b, { fromStep: 0, steps: 6 }, undefined, { stopRequested: () => ++n === 3 }),
    (e) => e instanceof EpochStoppedError && e.step === 3 && e.stateUri === stateKey(b, 3),
  );
  const last = await latestCheckpoint(b, 0, 6);
  assert.deepEqual(last, { step: 3, stateUri: stateKey(b, 3) }, 'the stop wrote the current step');
  const resumed = await runEpoch(session, b, { fromStep: 0, steps: 6 }, last);
  assert.equal(resumed.resumedFrom, 3);
  assert.ok((await bytes(resumed.stateUri)).equals(await bytes(whole.stateUri)), 'same final state bytes');
  assert.ok((await bytes(resumed.lossesUri)).equals(await bytes(whole.lossesUri)), 'same losses, steps 0..5');
  assert.ok((await bytes(stateKey(b, 2))).equals(await bytes(stateKey(a, 2))), 'a step-2 checkpoint is the same bytes');
  assert.deepEqual(resumed.lastLoss, whole.lastLoss);
});

test('the session key follows content: rewriting a head changes it', async () => {
  const p = plans[0];
  const k1 = await sessionKey(p);
  assert.equal(await sessionKey(p), k1);
  const head = new URL(p.tasks[0].head);
  const buf = fs.readFileSync(head);
  await new Promise((r) => setTimeout(r, 20));
  fs.writeFileSync(head, buf);
  fs.utimesSync(head, new Date(), new Date(Date.now() + 5000));
  assert.notEqual(await sessionKey(p), k1);
});
