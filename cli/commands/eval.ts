/** `mergeflow eval MODEL --suite SUITE`: accuracy of a model on each of a suite's target tasks (own heads). */
import { Command } from 'commander';
import { intArg } from '../args';
import { openSuite } from '../../core/suite/manifest';
import { UsageError } from '../errors';

export function evalCommand(): Command {
  return new Command('eval')
    .description(
      "evaluate a model (config.json + model.safetensors folder) on a suite's target tasks, each with its own head",
    )
    .argument('<model>', 'model folder: a path, file:// or s3:// URI')
    .requiredOption('--suite <suite>', 'suite folder or its suite.json')
    .option('--tasks <names>', 'comma-separated tasks (default: the suite targets; any suite task may be named)')
    .option('--json', 'print exactly { "average": <0..1>, "tasks": { "<task>": <0..1>, ... } }')
    .option('--limit <n>', 'evaluate at most N test images per task', intArg('--limit', 1))
    .action(async (model: string, opts: { suite: string; tasks?: string; json?: boolean; limit?: number }) => {
      const suite = await openSuite(opts.suite);
      const names = opts.tasks
        ? opts.tasks
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : suite.targets;
      if (!names.length) throw new UsageError('--tasks: no task names given');
      const specs = names.map((n) => {
        const t = suite.task(n);
        return { name: n, test: t.test, head: t.head };
      });
      if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0))
        throw new UsageError('--limit must be a positive integer');
      const { evaluateModel } = await import('../../core/eval/evaluate');
      const r = await evaluateModel(model, specs, { limit: opts.limit });
      if (opts.json) {
        process.stdout.write(JSON.stringify({ average: r.average, tasks: r.tasks }) + '\n');
        return;
      }
      const w = Math.max(7, ...names.map((n) => n.length));
      for (const d of r.details)
        console.log(`${d.task.padEnd(w)}  ${(d.accuracy * 100).toFixed(2).padStart(6)} %  (${d.correct}/${d.n})`);
      console.log(`${'average'.padEnd(w)}  ${(r.average * 100).toFixed(2).padStart(6)} %`);
    });
}
