/** `suite config --method adamerging`: a config the schema accepts as is, granularity and variant settable with --set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { ConfigError, validateConfig } from '../core/config/load';
import type { Suite } from '../core/suite/manifest';
import { suiteConfigYaml, suiteMergeConfig } from '../core/suite/config';

const folder = 's3://b/suites/mini';
const names = ['digits', 'fashion', 'shapes', 'noise'];
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

test('a ready AdaMerging config: every target with its model, head and test inputs; defaults; --set', () => {
  const doc = parseYaml(suiteConfigYaml(suite, { method: 'adamerging' }));
  const cfg = validateConfig(doc, 'suite config');
  assert.equal(cfg.method, 'adamerging');
  if (cfg.method !== 'adamerging') return;
  assert.equal(cfg.base, `${folder}/pretrained`);
  assert.deepEqual(
    cfg.tasks.map((t) => [t.name, t.model, t.head, t.data]),
    names
      .slice(0, 3)
      .map((n) => [
        n,
        `${folder}/models/${n}`,
        `${folder}/heads/${n}.safetensors`,
        `${folder}/data/${n}/test.safetensors`,
      ]),
  );
  assert.equal(cfg.parameters.granularity, 'layer');
  assert.equal(cfg.parameters.variant, 'plain');
  assert.equal(cfg.output, `${folder}/merged/adamerging`);

  const set = validateConfig(
    suiteMergeConfig(suite, { method: 'adamerging', sets: ['parameters.granularity=task', 'parameters.variant=ties'] }),
    'suite config',
  );
  assert.ok(set.method === 'adamerging' && set.parameters.granularity === 'task' && set.parameters.variant === 'ties');
  // a bad value is caught by the schema, naming the field
  assert.throws(
    () => validateConfig(suiteMergeConfig(suite, { method: 'adamerging', sets: ['parameters.granularity=row'] }), 'x'),
    (e: unknown) => e instanceof ConfigError && /parameters\.granularity/.test(e.message),
  );
  assert.throws(
    () => suiteMergeConfig(suite, { method: 'adamerging', irrelevant: 1 }),
    /AdaMerging learns one λ per target task/,
  );
});
