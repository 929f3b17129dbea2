/**
 * The frank_wolfe config: `suite config --method frank_wolfe [--irrelevant N]` gives one the schema accepts as it
 * is (FW-Soft from the pretrained model by default); unknown keys and a bad pool are refused, naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { ConfigError, validateConfig } from '../core/config/load';
import type { Suite } from '../core/suite/manifest';
import { suiteConfigYaml, suiteMergeConfig } from '../core/suite/config';

const folder = 's3://b/suites/mini';
const names = ['digits', 'fashion', 'shapes', 'noise', 'blobs'];
const tasks = names.map((name) => ({
  name,
  model: `${folder}/models/${name}`,
  head: `${folder}/heads/${name}.safetensors`,
  train: `${folder}/data/${name}/train.safetensors`,
  test: `${folder}/data/${name}/test.safetensors`,
}));
const suite = {
  uri: folder,
  manifest: { name: 'mini-8-small', seed: 0, size: 'small' },
  pretrained: `${folder}/pretrained`,
  tasks,
  targets: names.slice(0, 3),
  irrelevant: names.slice(3),
  task: (n: string) => tasks.find((t) => t.name === n)!,
} as unknown as Suite;

test('suite config --method frank_wolfe --irrelevant 2: targets with proxy (train) and data (test), pool of 5, FW-Soft', () => {
  const doc = parseYaml(suiteConfigYaml(suite, { method: 'frank_wolfe', irrelevant: 2 }));
  const cfg = validateConfig(doc, 'suite config');
  assert.equal(cfg.method, 'frank_wolfe');
  if (cfg.method !== 'frank_wolfe') return;
  assert.ok(Array.isArray(cfg.pool));
  assert.deepEqual(
    cfg.pool.map((m) => m.name),
    names,
  );
  assert.deepEqual(
    cfg.targets.map((t) => [t.name, t.proxy, t.data]),
    names.slice(0, 3).map((n) => [n, `${folder}/data/${n}/train.safetensors`, `${folder}/data/${n}/test.safetensors`]),
  );
  assert.equal(cfg.parameters.variant, 'soft');
  assert.equal(cfg.parameters.start, 'pretrained');
  assert.equal(cfg.parameters.oracle, 'task');
  assert.equal(cfg.parameters.oracle_basis, 'task_vectors');
  assert.equal(cfg.parameters.step_objective, 'proxy');
  assert.equal(cfg.output, `${folder}/merged/frank_wolfe-irrelevant2`);
  const hard = validateConfig(
    suiteMergeConfig(suite, { method: 'frank_wolfe', sets: ['parameters.variant=hard', 'parameters.start=ta'] }),
    'x',
  );
  assert.ok(hard.method === 'frank_wolfe' && hard.parameters.variant === 'hard' && hard.parameters.start === 'ta');
});

test('frank_wolfe configs: unknown keys, a pool prefix with extra keys, an empty pool are refused naming the field', () => {
  const base = suiteMergeConfig(suite, { method: 'frank_wolfe' });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...base, parameters: { iteratons: 3 } }, /parameters\.iteratons: unknown key; expected only variant, /],
    [{ ...base, pool: { prefix: 's3://b/x/', recurse: true } }, /pool/],
    [{ ...base, pool: [] }, /pool: at least one candidate/],
    [{ ...base, skip_incompatible: 'yes' }, /skip_incompatible: expected boolean/],
  ];
  for (const [doc, pattern] of bad)
    assert.throws(
      () => validateConfig(doc, 'x'),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      String(pattern),
    );
  const prefix = validateConfig({ ...base, pool: { prefix: 's3://b/finetuned/' } }, 'x');
  assert.ok(
    prefix.method === 'frank_wolfe' && !Array.isArray(prefix.pool) && prefix.pool.prefix === 's3://b/finetuned/',
  );
});
