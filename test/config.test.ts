/** The config schema: a union on `method`, strict at every level, one line per problem naming the key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, validateConfig } from '../core/config/load';
import { MethodNotImplementedError, runnableConfig } from '../core/config/schema';
import { runCli, tmpDir } from './helpers/env';

const dataFree = () => ({
  method: 'task_arithmetic',
  base: '/m/base.safetensors',
  models: [
    { name: 'a', checkpoint: '/m/a.safetensors' },
    { name: 'b', checkpoint: 's3://bucket/b.safetensors' },
  ],
  parameters: { scaling: 0.4 },
  output: '/m/out.safetensors',
});

const adamerging = () => ({
  method: 'adamerging',
  base: '/m/base',
  tasks: [
    { name: 'mnist', model: '/m/mnist', head: '/m/heads/mnist.safetensors', data: '/m/data/mnist-test.bin' },
    { name: 'svhn', model: '/m/svhn', head: '/m/heads/svhn.safetensors', data: 's3://b/svhn-test.bin' },
  ],
  parameters: { granularity: 'task', lr: 0.01 },
  output: '/m/merged',
});

/** The problems a config is refused with (fails the test if it is accepted). */
function problems(doc: unknown): string[] {
  try {
    validateConfig(doc, 'test.yaml', '/');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    for (const p of e.problems) assert.doesNotMatch(p, /\n/, 'one line per problem');
    return e.problems;
  }
  assert.fail('the config was accepted');
}

test('an unknown key is an error naming the key, at every level and for every method', () => {
  const cases: [string, (d: Record<string, unknown>) => void, () => Record<string, unknown>, RegExp][] = [
    ['top level', (d) => (d.outptu = '/x'), dataFree, /^outptu: unknown key; expected only method, models, /],
    [
      'model entry',
      (d) => ((d.models as object[])[1] = { name: 'b', checkpoint: '/b', checkpiont: '/b' }),
      dataFree,
      /^models\.1\.checkpiont: unknown key; expected only name, checkpoint$/,
    ],
    [
      'parameters',
      (d) => (d.parameters = { scale: 0.3 }),
      dataFree,
      /^parameters\.scale: unknown key; expected only scaling$/,
    ],
    [
      'ties parameters',
      (d) => ((d.method = 'ties'), (d.parameters = { keep: 0.1, trim: 1 })),
      dataFree,
      /^parameters\.trim: unknown key; expected only scaling, keep, merge$/,
    ],
    [
      'weight averaging takes only base_free',
      (d) => ((d.method = 'weight_average'), (d.parameters = { scaling: 1 })),
      dataFree,
      /^parameters\.scaling: unknown key; expected only base_free$/,
    ],
    [
      'adamerging top level',
      (d) => (d.models = []),
      adamerging,
      /^models: unknown key; expected only method, tasks, parameters, /,
    ],
    [
      'adamerging task',
      (d) => ((d.tasks as Record<string, unknown>[])[0].labels = '/l'),
      adamerging,
      /^tasks\.0\.labels: unknown key; expected only name, model, head, data$/,
    ],
    [
      'adamerging parameters',
      (d) => ((d.parameters as Record<string, unknown>).step = 10),
      adamerging,
      /^parameters\.step: unknown key; expected only granularity, variant, steps, /,
    ],
  ];
  for (const [what, edit, make, pattern] of cases) {
    const doc = make();
    edit(doc);
    const got = problems(doc);
    assert.equal(got.length, 1, `${what}: ${got.join(' / ')}`);
    assert.match(got[0], pattern, what);
  }
});

test('a parameter of the wrong type is one line naming the key and the expected type', () => {
  const doc = dataFree();
  doc.parameters = { scaling: 'high' } as never;
  assert.deepEqual(problems(doc), ['parameters.scaling: expected number, received string']);
  const ada = adamerging();
  ada.parameters = { granularity: 'model', steps: 2.5 } as never;
  const got = problems(ada);
  assert.equal(got.length, 2);
  assert.match(got[0], /^parameters\.granularity: .*"task"\|"layer"/);
  assert.match(got[1], /^parameters\.steps: expected int, received number$/);
});

test('an unknown method is named with the methods there are, and the shared fields are still checked', () => {
  const doc = { ...dataFree(), method: 'tiez', shards: 0 };
  const got = problems(doc);
  assert.equal(
    got[0],
    "method: expected one of weight_average | task_arithmetic | ties | adamerging | frank_wolfe, got 'tiez'",
  );
  assert.match(got[1], /^shards: /);
  assert.equal(got.length, 2);
});

test('each method gets its own defaults; the suite block is declared and kept', () => {
  const ta = validateConfig(
    { ...dataFree(), parameters: undefined, suite: { uri: 's3://b/suite', seed: 1 } },
    't',
    '/',
  );
  assert.equal(ta.method, 'task_arithmetic');
  assert.deepEqual(ta.parameters, { scaling: 0.3 });
  assert.deepEqual(ta.suite, { uri: 's3://b/suite', seed: 1 });
  assert.equal(ta.shards, 4);
  const ada = validateConfig(adamerging(), 't', '/');
  assert.equal(ada.method, 'adamerging');
  if (ada.method !== 'adamerging') return;
  assert.deepEqual(ada.parameters, {
    granularity: 'task',
    variant: 'plain',
    steps: 500,
    batch_size: 16,
    batches_per_task: 1,
    lr: 0.01,
    init: 0.3,
    clamp: true,
    keep: 0.2,
    seed: 0,
    steps_per_epoch: 'auto',
    parallel: 'none',
    checkpoint_every: 10,
  });
  assert.equal(ada.tasks[0].head, 'file:///m/heads/mnist.safetensors');
  assert.equal(ada.tasks[1].data, 's3://b/svhn-test.bin');
  assert.throws(() => runnableConfig(ada), MethodNotImplementedError);
  assert.equal(runnableConfig(ta), ta);
  const dup = adamerging();
  dup.tasks[1].name = 'mnist';
  assert.deepEqual(problems(dup), ["tasks.1.name: duplicate task name 'mnist'"]);
});

test('the CLI: validate fills an AdaMerging config; run accepts it and checks its inputs first; a bad parameter is one line', async () => {
  const dir = tmpDir('config');
  const file = path.join(dir, 'ada.yaml');
  fs.writeFileSync(file, stringify(adamerging()));
  const v = await runCli(['validate', file, '--json']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(JSON.parse(v.stdout).parameters.steps, 500);
  const r = await runCli(['run', file], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  // the schema accepted it: `run` went on to read the inputs' headers, before reaching for Temporal
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr.trim(), /^mergeflow: base: file:\/\/\/m\/base: no config\.json; [^\n]*$/);
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, stringify({ ...adamerging(), parameters: { lr: 'fast' } }));
  const b = await runCli(['validate', bad]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /bad\.yaml: invalid config\n {2}- parameters\.lr: expected number, received string\n$/);
});
