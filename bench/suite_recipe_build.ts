/**
 * Build a full mini-8 suite with a recipe variant (a candidate for the next suite version): the same build as
 * `mergeflow suite build`, with parts of the recipe replaced (deep-merged over the full recipe).
 *
 *   node dist/bench/suite_recipe_build.js OUT [--seed 0] [--workers 2] [--backend wasm|tensorflow]
 *        --json '{"model":{"numHiddenLayers":4}}'
 *
 * Then: `bench/adamerging_suite.js OUT --supervised` (the ceiling of learned coefficients) before the entropy runs.
 */
import { buildSuite } from '../core/suite/build';
import { RECIPES, SuiteRecipe } from '../core/suite/recipe';
import type { BackendChoice } from '../core/tensor/backend';
import { deepMerge, opt } from './harness/args';

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out || out.startsWith('--')) throw new Error('usage: suite_recipe_build OUT [--seed N] --json RECIPE');
  const recipe: SuiteRecipe = deepMerge(RECIPES.full, JSON.parse(opt('json') ?? '{}') as Partial<SuiteRecipe>);
  process.stderr.write(`recipe: ${JSON.stringify(recipe)}\n`);
  const t0 = Date.now();
  await buildSuite(out, {
    seed: Number(opt('seed') ?? 0),
    size: 'full',
    recipe,
    workers: opt('workers') ? Number(opt('workers')) : undefined,
    backend: opt('backend') as BackendChoice | undefined,
    onEvent: (e) => {
      const x = e as unknown as Record<string, unknown>;
      if (x.state === 'done' || (typeof x.step === 'number' && (x.step as number) % 100 === 0))
        process.stderr.write(`${JSON.stringify(x)}\n`);
    },
  });
  process.stderr.write(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}

main().catch((e) => {
  process.stderr.write(`suite_recipe_build: ${(e as Error).stack}\n`);
  process.exit(1);
});
