/**
 * `mergeflow suite build|config|report`: the mini-8 merging benchmark (core/suite). These run in this
 * process (no Temporal needed): build trains small models, report runs the data-free merges locally.
 */
import { Command, InvalidArgumentError } from 'commander';
import { BACKEND_CHOICES, BackendChoice } from '../../core/tensor/backend';
import { buildSuite } from '../../core/suite/build';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../../core/config/load';
import { suiteConfigYaml } from '../../core/suite/config';
import { openSuite, suiteFolder } from '../../core/suite/manifest';
import { packSuite, unpackSuite } from '../../core/suite/pack';
import { reportMarkdown, suiteReport, validitySection, writeReport } from '../../core/suite/report';
import { buildProgress, reportProgress } from '../suite_progress';
import { ensureBackend } from '../../core/eval/evaluate';
import { normalizeUri } from '../../core/store';
import { printJson } from '../format';
import { intArg } from '../args';
import { UsageError } from '../errors';

function backendArg(v: string): BackendChoice {
  if (!(BACKEND_CHOICES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`choose one of ${BACKEND_CHOICES.join(', ')}`);
  return v as BackendChoice;
}

export function suiteCommand(): Command {
  const suite = new Command('suite').description(
    'the mini-8 merging benchmark: build it, print merge configs for it, report its baseline table',
  );

  suite
    .command('build')
    .description(
      'build the suite (task data, pretrained tiny CLIP ViT, heads, 24 fine-tuned models) reproducibly from a seed',
    )
    .argument('<out>', 'suite folder: a path, file:// or s3:// URI')
    .option('--seed <n>', 'seed of every random choice', intArg('--seed'), 0)
    .option('--size <size>', "'full' (the benchmark) or 'small' (for tests)", 'full')
    .option('--workers <n>', 'models trained at once in worker threads (default: one per core)', intArg('--workers'))
    .option('--backend <name>', `tensor backend for training (${BACKEND_CHOICES.join(', ')}; default wasm)`, backendArg)
    .option('--json', 'print the suite manifest as JSON')
    .action(
      async (
        out: string,
        opts: { seed: number; size: string; workers?: number; backend?: BackendChoice; json?: boolean },
      ) => {
        if (opts.size !== 'full' && opts.size !== 'small')
          throw new UsageError(`--size must be 'full' or 'small', got '${opts.size}'`);
        const folder = suiteFolder(out);
        const progress = buildProgress(process.stderr.isTTY === true && !opts.json);
        let m;
        try {
          m = await buildSuite(folder, {
            seed: opts.seed,
            size: opts.size,
            workers: opts.workers,
            backend: opts.backend,
            onEvent: progress.onEvent,
          });
        } finally {
          progress.stop();
        }
        if (opts.json) printJson(m);
        else {
          console.log(
            `suite ${m.name} (${m.size}, seed ${m.seed}) built in ${m.build.seconds}s on ${m.build.backend} with ${m.build.workers} worker(s)`,
          );
          console.log(`  manifest   ${folder}/suite.json`);
          console.log(`  pretrained ${folder}/${m.pretrained}`);
          console.log(`  targets    ${m.targets.join(', ')}`);
          console.log(`  irrelevant ${m.irrelevant.length} models`);
          console.log(
            `next: mergeflow suite report ${out}   or   mergeflow suite config ${out} --method task_arithmetic`,
          );
        }
      },
    );

  suite
    .command('config')
    .description('print a ready-to-run merge config (YAML) for the suite')
    .argument('<suite>', 'suite folder or its suite.json')
    .requiredOption(
      '--method <method>',
      'merge method, e.g. weight_average, task_arithmetic, ties, adamerging, frank_wolfe',
    )
    .option('--irrelevant <n>', 'add the first N irrelevant models to the pool', intArg('--irrelevant'), 0)
    .option('--output <uri>', 'output folder (default <suite>/merged/<method>)')
    .option(
      '-s, --set <path=value>',
      'override a field, e.g. parameters.granularity=task (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .action(async (s: string, opts: { method: string; irrelevant: number; output?: string; set: string[] }) => {
      const st = await openSuite(s);
      const yaml = suiteConfigYaml(st, {
        method: opts.method,
        irrelevant: opts.irrelevant,
        output: opts.output ? normalizeUri(opts.output) : undefined,
        sets: opts.set,
      });
      // what is printed must run as is: validate it (a bad --set is one clear error here, not at run time)
      validateConfig(parseYaml(yaml), '--set');
      process.stdout.write(yaml);
    });

  suite
    .command('pack')
    .description(
      'pack a built suite small enough to commit: models as F16 safetensors, heads, the manifest (task data is rebuilt from the seed on unpack)',
    )
    .argument('<suite>', 'suite folder or its suite.json')
    .argument('<out>', 'pack folder: a path, file:// or s3:// URI')
    .option('--dtype <dtype>', "'F16' (half the bytes) or 'F32' (exact)", 'F16')
    .option(
      '--targets-only',
      'pack the pretrained and the target models only (enough for the demo and AdaMerging; no irrelevant models)',
    )
    .action(async (s: string, out: string, opts: { dtype: string; targetsOnly?: boolean }) => {
      if (opts.dtype !== 'F16' && opts.dtype !== 'F32')
        throw new UsageError(`--dtype must be 'F16' or 'F32', got '${opts.dtype}'`);
      const p = await packSuite(s, out, opts.dtype, opts.targetsOnly ? 'targets' : 'all');
      console.log(
        `packed ${Object.keys(p.files).length} files (${p.dtype}${opts.targetsOnly ? ', targets only' : ''}) of suite ${p.suite.name} seed ${p.suite.seed} into ${suiteFolder(out)}`,
      );
    });

  suite
    .command('unpack')
    .description('rebuild a complete suite from a pack (task data regenerated and checked, models widened to F32)')
    .argument('<pack>', 'pack folder (with pack.json)')
    .argument('<out>', 'suite folder to write: a path, file:// or s3:// URI')
    .action(async (p: string, out: string) => {
      const m = await unpackSuite(p, out, (what) => process.stderr.write(`unpack: ${what}\n`));
      console.log(`suite ${m.name} (${m.size}, seed ${m.seed}) unpacked into ${suiteFolder(out)}`);
    });

  suite
    .command('report')
    .description(
      'evaluate pretrained, individual, weight averaging, Task Arithmetic and TIES; print the table, write report.md/.json/.png',
    )
    .argument('<suite>', 'suite folder or its suite.json')
    .option('--json', 'print the report as JSON instead of Markdown')
    .option('--out <dir>', 'folder for report.md, report.json, report.png (default: the suite folder)')
    .option('--limit <n>', 'evaluate at most N test images per task', intArg('--limit', 1))
    .option('--no-validity', 'skip the validity check (entropy vs error over a Task Arithmetic sweep)')
    .option('--check', 'exit 1 when the suite fails the validity check')
    .action(
      async (s: string, opts: { json?: boolean; out?: string; limit?: number; validity: boolean; check?: boolean }) => {
        await ensureBackend();
        const r = await suiteReport(s, {
          onEvent: opts.json ? undefined : reportProgress(),
          limit: opts.limit,
          validity: opts.validity,
        });
        const files = await writeReport(r, opts.out ?? suiteFolder(s));
        if (opts.json) printJson(r);
        else {
          process.stdout.write(reportMarkdown(r));
          if (r.validity) process.stdout.write(validitySection(r.validity));
          console.log(`\nwritten: ${files.md}, ${files.json}, ${files.png}`);
        }
        if (opts.check && r.validity && !r.validity.ok) {
          process.stderr.write(
            `mergeflow: ${r.suite} fails the validity check (${r.validity.checks
              .filter((k) => !k.ok)
              .map((k) => k.name)
              .join('; ')}); see the report\n`,
          );
          process.exitCode = 1;
        }
      },
    );

  return suite;
}
