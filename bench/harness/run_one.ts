/**
 * Runs one bench module in its own process, so that no bench inherits another's memory, tensor backend or
 * open handles (peak RSS figures depend on it). The runner (run.ts) starts it as
 *
 *   node dist/bench/harness/run_one.js MODULE.js OUT.json DIR [--quick]
 *
 * and reads { figures } or { unavailable } or { error } from OUT.json.
 */
import * as fs from 'node:fs';
import { loadBench } from './discover';

export type Outcome = { figures: unknown[] } | { unavailable: string } | { error: string };

async function main(): Promise<void> {
  const [file, out, dir] = process.argv.slice(2);
  const quick = process.argv.includes('--quick');
  const write = (o: Outcome) => fs.writeFileSync(out, JSON.stringify(o));
  try {
    const bench = loadBench(file);
    const why = await bench.unavailable?.();
    if (why !== undefined) return write({ unavailable: why });
    const figures = await bench.run({ dir, quick, log: (line) => process.stderr.write(`  ${line}\n`) });
    write({ figures });
  } catch (e) {
    write({ error: (e as Error).stack ?? String(e) });
    process.exitCode = 1;
  }
}

main()
  .then(() => process.exit()) // some clients (Temporal, S3 sockets) keep the loop alive
  .catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
