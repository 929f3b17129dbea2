/**
 * One data-free merge in a process of its own, so its peak memory can be measured alone (data_free_mergekit).
 *   node dist/bench/data_free_child.js METHOD PARAMS_JSON OUTPUT BASE MODEL...
 * Prints {"wall": seconds} on stdout.
 */
import { validateConfig } from '../core/config/load';
import { runLocalMerge } from '../core/pipeline/local';

async function main(): Promise<void> {
  const [method, params, output, base, ...models] = process.argv.slice(2);
  const cfg = validateConfig(
    {
      method,
      base,
      models: models.map((m, k) => ({ name: `m${k}`, checkpoint: m })),
      parameters: JSON.parse(params),
      output,
    },
    'bench',
  );
  const t0 = process.hrtime.bigint();
  await runLocalMerge(cfg);
  console.log(JSON.stringify({ wall: Number(process.hrtime.bigint() - t0) / 1e9 }));
}

main().catch((e) => {
  console.error(String((e as Error).stack ?? e));
  process.exit(1);
});
