/**
 * The bad-input catalogue: every case is one `mergeflow` call with a bad input, the exact stderr it must print,
 * its exit code, and whether it fails before any workflow starts or inside the run. test/bad-input.test.ts runs
 * each one through the real CLI and stack; docs/bad-inputs.md is generated from this list (test/bad_inputs/doc.ts).
 *
 * In `stderr`, {name} stands for a value of the case (see `Vars`) and … for any text on that line.
 */
import * as fs from 'node:fs';
import { writeDataset } from '../../core/data/dataset';
import { fromFloat32 } from '../../core/safetensors';
import { joinUri } from '../../core/store';
import { writeHead } from '../../core/suite/io';
import { CLASSES } from '../../core/synthetic_adamerging';
import { fileUri } from '../helpers/env';
import { SIZE_HINT } from '../../core/config/size';
import { adaDoc, baseParts, casePath, dataFreeDoc, editedBase, Fixture, rawSafetensors } from './fixture';

export type Group =
  | 'config file'
  | 'config schema'
  | 'command line'
  | 'safetensors'
  | 'checkpoint folder'
  | 'model mismatch'
  | 'weights'
  | 'store'
  | 'servers'
  | 'AdaMerging';

/** Values substituted into `stderr` and into the doc's explanations. */
export interface Vars {
  /** The case's config file (a path). */
  cfg: string;
  /** The case's own broken file, as a file:// URI. */
  file: string;
  /** The fixture folder (a path) and S3 prefix. */
  dir: string;
  s3: string;
  /** The output the case asks for (a path or s3:// URI). */
  out: string;
  /** The valid base checkpoint (file:// URI). */
  base: string;
}

export interface Invocation {
  args: string[];
  /** Variables for the child; `undefined` removes one. */
  env?: Record<string, string | undefined>;
}

export interface BadInputCase {
  id: string;
  group: Group;
  /** What is wrong, for the table. */
  input: string;
  exit: 1 | 2;
  stderr: string;
  /** 'before start': no workflow exists afterwards; 'in the run': the workflow exists and has failed. */
  when: 'before start' | 'in the run';
  /** Write the case's files and return the CLI call; `v.out` is where a run would write. */
  make(fx: Fixture, v: Vars): Promise<Invocation> | Invocation;
}

/** `run CONFIG` for a document, with the case's config path. */
function run(v: Vars, fx: Fixture, doc: unknown, extra: string[] = []): Invocation {
  fs.writeFileSync(v.cfg, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return { args: ['run', v.cfg, ...extra] };
}

/** A config problem: the header line and one line per problem. */
function invalid(...problems: string[]): string {
  return ['mergeflow: {cfg}: invalid config', ...problems.map((p) => `  - ${p}`)].join('\n');
}

const SHARED_KEYS = 'method, models, parameters, base, output, dtype, shards, name, suite, max_shard_size';
const ADA_KEYS = 'method, tasks, parameters, base, output, dtype, shards, name, suite';
const METHODS = 'weight_average | task_arithmetic | ties | adamerging | frank_wolfe';

/** The case's output as a folder (sharded outputs are folders). */
function folderOf(v: Vars): string {
  return v.out.replace(/\.safetensors$/, '');
}

/** A config whose only model is the case's file. */
function oneModel(fx: Fixture, v: Vars, checkpoint: string): Invocation {
  return run(v, fx, dataFreeDoc(fx, v.out, { models: [{ name: 'bad', checkpoint }] }));
}

export const CASES: BadInputCase[] = [
  // ---- the config file
  {
    id: 'yaml-syntax',
    group: 'config file',
    input: 'YAML that does not parse (an unclosed list)',
    exit: 2,
    stderr: invalid('not valid YAML: …'),
    when: 'before start',
    make: (fx, v) => run(v, fx, 'method: [unclosed\n'),
  },
  {
    id: 'yaml-not-mapping',
    group: 'config file',
    input: 'YAML whose top level is a list',
    exit: 2,
    stderr: invalid('(top level): expected a mapping with method, base, models, output'),
    when: 'before start',
    make: (fx, v) => run(v, fx, '- method: ties\n'),
  },
  {
    id: 'config-missing',
    group: 'config file',
    input: 'a config path that does not exist',
    exit: 2,
    stderr: invalid('cannot read the file (ENOENT)'),
    when: 'before start',
    make: (_fx, v) => ({ args: ['run', v.cfg] }),
  },
  {
    id: 'output-is-base',
    group: 'config file',
    input: 'the output is the base checkpoint',
    exit: 2,
    stderr: invalid('output: {base} would overwrite the base ({base}); write the merge somewhere else'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, fx.base)),
  },
  {
    id: 'output-is-model',
    group: 'config file',
    input: "the output is a model's checkpoint (S3)",
    exit: 2,
    stderr: invalid(
      "output: {s3}/in/model-1.safetensors would overwrite the model 'task1' ({s3}/in/model-1.safetensors); write the merge somewhere else",
    ),
    when: 'before start',
    make: (fx, v) =>
      run(v, fx, { method: 'ties', base: fx.s3Base, models: fx.s3Models, output: fx.s3Models[1].checkpoint }),
  },
  {
    id: 'output-is-ada-model-folder',
    group: 'config file',
    input: "AdaMerging: the output folder is a task's model folder",
    exit: 2,
    stderr: invalid(
      "output: file://{dir}/ada/task0 would overwrite the task 'task0' model (file://{dir}/ada/task0); write the merge somewhere else",
    ),
    when: 'before start',
    make: (fx, v) => run(v, fx, adaDoc(fx, fx.ada.tasks[0].model)),
  },
  // ---- the config schema
  {
    id: 'method-unknown',
    group: 'config schema',
    input: 'an unknown method (`tiez`)',
    exit: 2,
    stderr: invalid(`method: expected one of ${METHODS}, got 'tiez'`),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { method: 'tiez' })),
  },
  {
    id: 'method-missing',
    group: 'config schema',
    input: 'no method at all',
    exit: 2,
    stderr: invalid(`method: expected one of ${METHODS}, got nothing`),
    when: 'before start',
    make: (fx, v) => run(v, fx, { base: fx.base, models: fx.models, output: v.out }),
  },
  {
    id: 'method-fields-of-another',
    group: 'config schema',
    input: 'a Frank-Wolfe config written like a data-free one (`models`, no `pool` or `targets`)',
    exit: 2,
    stderr: invalid(
      'pool: expected a list of candidates ({ name, checkpoint }) or { prefix: URI } (every checkpoint under it)',
      'targets: expected array, received undefined',
      'models: unknown key; expected only method, pool, targets, skip_incompatible, parameters, base, output, dtype, shards, name, suite',
    ),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { method: 'frank_wolfe' })),
  },
  {
    id: 'typo-top-level',
    group: 'config schema',
    input: 'a typo in a top-level key (`shard:` for `shards:`)',
    exit: 2,
    stderr: invalid(`shard: unknown key; expected only ${SHARED_KEYS}`),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { shard: 2 })),
  },
  {
    id: 'typo-parameter',
    group: 'config schema',
    input: 'a typo in a parameter (`scale:` for `scaling:`)',
    exit: 2,
    stderr: invalid('parameters.scale: unknown key; expected only scaling'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { parameters: { scale: 0.3 } })),
  },
  {
    id: 'typo-model-entry',
    group: 'config schema',
    input: 'a typo in a model entry (`checkpiont:`)',
    exit: 2,
    stderr: invalid(
      'models.0.checkpoint: expected a URI (file://, s3:// or a plain path) or { latest_under: URI }',
      'models.0.checkpiont: unknown key; expected only name, checkpoint',
    ),
    when: 'before start',
    make: (fx, v) =>
      run(v, fx, dataFreeDoc(fx, v.out, { models: [{ name: 'a', checkpiont: fx.models[0].checkpoint }] })),
  },
  {
    id: 'typo-task-entry',
    group: 'config schema',
    input: 'AdaMerging: a typo in a task entry (`heda:`)',
    exit: 2,
    stderr: invalid(
      'tasks.0.head: expected string, received undefined',
      'tasks.0.heda: unknown key; expected only name, model, head, data',
    ),
    when: 'before start',
    make: (fx, v) => {
      const { head, ...rest } = fx.ada.tasks[0];
      return run(v, fx, adaDoc(fx, v.out, { tasks: [{ ...rest, heda: head }, fx.ada.tasks[1]] }));
    },
  },
  {
    id: 'keep-out-of-range',
    group: 'config schema',
    input: 'TIES `keep: 1.5` (a fraction)',
    exit: 2,
    stderr: invalid('parameters.keep: expected number to be <=1'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { method: 'ties', parameters: { keep: 1.5 } })),
  },
  {
    id: 'scaling-not-number',
    group: 'config schema',
    input: '`scaling: big`',
    exit: 2,
    stderr: invalid('parameters.scaling: expected number, received string'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { parameters: { scaling: 'big' } })),
  },
  {
    id: 'shards-zero',
    group: 'config schema',
    input: '`shards: 0`',
    exit: 2,
    stderr: invalid('shards: expected number to be >=1'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { shards: 0 })),
  },
  ...(
    [
      ['not-size', 'abc', '`max_shard_size: abc`'],
      ['zero', 0, '`max_shard_size: 0`'],
      ['negative', '-5GB', '`max_shard_size: -5GB`'],
      ['billions', '5B', "`max_shard_size: 5B` (mergekit's five billion; ambiguous with bytes)"],
    ] as const
  ).map(([id, value, input]): BadInputCase => ({
    id: `max-shard-size-${id}`,
    group: 'config schema',
    input,
    exit: 2,
    stderr: invalid(`max_shard_size: expected ${SIZE_HINT}, got ${JSON.stringify(value)}`),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, folderOf(v), { max_shard_size: value })),
  })),
  {
    id: 'max-shard-size-file-output',
    group: 'config schema',
    input: '`max_shard_size` with an output that names a `.safetensors` file',
    exit: 2,
    stderr: invalid(
      'max_shard_size: a sharded output is a folder, but output names the file {out}; set output to a folder or drop max_shard_size',
    ),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { max_shard_size: '1MB' })),
  },
  {
    id: 'dtype-unknown',
    group: 'config schema',
    input: 'an output dtype mergeflow does not write (`F8`)',
    exit: 2,
    stderr: invalid('dtype: expected one of "base"|"F32"|"F16"|"BF16"'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { dtype: 'F8' })),
  },
  {
    id: 'models-empty',
    group: 'config schema',
    input: 'an empty model pool (`models: []`)',
    exit: 2,
    stderr: invalid('models: at least one model'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { models: [] })),
  },
  {
    id: 'models-duplicate-name',
    group: 'config schema',
    input: 'two models with the same name',
    exit: 2,
    stderr: invalid("models.1.name: duplicate model name 'task0'"),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { models: [fx.models[0], { ...fx.models[1], name: 'task0' }] })),
  },
  {
    id: 'model-name-chars',
    group: 'config schema',
    input: 'a model name with a space',
    exit: 2,
    stderr: invalid('models.0.name: letters, digits, _ . - only'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { models: [{ ...fx.models[0], name: 'a b' }] })),
  },
  {
    id: 'uri-scheme',
    group: 'config schema',
    input: 'an `http://` base',
    exit: 2,
    stderr: invalid('base: expected file://, s3:// or a plain path'),
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { base: 'http://example.com/base.safetensors' })),
  },
  {
    id: 'set-no-equals',
    group: 'config schema',
    input: '`--set` without `=`',
    exit: 2,
    stderr:
      "mergeflow: --set: invalid config\n  - 'parameters.scaling': expected path=value, e.g. parameters.scaling=0.4",
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out), ['--set', 'parameters.scaling']),
  },
  {
    id: 'set-into-scalar',
    group: 'config schema',
    input: '`--set` below a scalar (`method.x=1`)',
    exit: 2,
    stderr: 'mergeflow: --set: invalid config\n  - method: is not an object',
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out), ['--set', 'method.x=1']),
  },
  // ---- the command line
  {
    id: 'heartbeat-not-number',
    group: 'command line',
    input: '`--heartbeat-timeout abc` (used to leave the workflow retrying forever)',
    exit: 2,
    stderr:
      "mergeflow: option '--heartbeat-timeout <seconds>' argument 'abc' is invalid. --heartbeat-timeout must be a number of seconds >= 1 and <= 86400; see 'mergeflow run --help'",
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out), ['--heartbeat-timeout', 'abc']),
  },
  {
    id: 'heartbeat-zero',
    group: 'command line',
    input: '`--heartbeat-timeout 0`',
    exit: 2,
    stderr:
      "mergeflow: option '--heartbeat-timeout <seconds>' argument '0' is invalid. --heartbeat-timeout must be a number of seconds >= 1 and <= 86400; see 'mergeflow run --help'",
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out), ['--heartbeat-timeout', '0']),
  },
  {
    id: 'list-limit-not-number',
    group: 'command line',
    input: '`list -n ten`',
    exit: 2,
    stderr:
      "mergeflow: option '-n, --limit <n>' argument 'ten' is invalid. --limit must be an integer >= 1; see 'mergeflow list --help'",
    when: 'before start',
    make: () => ({ args: ['list', '-n', 'ten'] }),
  },
  {
    id: 'list-status-unknown',
    group: 'command line',
    input: '`list --status runing`',
    exit: 2,
    stderr:
      "mergeflow: option '--status <status>' argument 'runing' is invalid. Allowed choices are running, completed, failed, cancelled; see 'mergeflow list --help'",
    when: 'before start',
    make: () => ({ args: ['list', '--status', 'runing'] }),
  },
  {
    id: 'worker-concurrency-fraction',
    group: 'command line',
    input: '`worker --concurrency 1.5`',
    exit: 2,
    stderr:
      "mergeflow: option '-c, --concurrency <n>' argument '1.5' is invalid. --concurrency must be an integer >= 1; see 'mergeflow worker --help'",
    when: 'before start',
    make: () => ({ args: ['worker', '--concurrency', '1.5'] }),
  },
  {
    id: 'predict-batch-not-number',
    group: 'command line',
    input: '`predict --batch-size all`',
    exit: 2,
    stderr:
      "mergeflow: option '--batch-size <n>' argument 'all' is invalid. --batch-size must be an integer >= 1; see 'mergeflow predict --help'",
    when: 'before start',
    make: (fx, v) => ({
      args: ['predict', fx.ada.pretrained, '--inputs', fx.ada.tasks[0].data, '--out', v.out, '--batch-size', 'all'],
    }),
  },
  {
    id: 'option-unknown',
    group: 'command line',
    input: 'an unknown option (`run --wiat`)',
    exit: 2,
    stderr: "mergeflow: unknown option '--wiat' (Did you mean --wait?); see 'mergeflow run --help'",
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out), ['--wiat']),
  },
  {
    id: 'command-unknown',
    group: 'command line',
    input: 'an unknown command (`mergeflow merge`)',
    exit: 2,
    stderr: "mergeflow: unknown command 'merge'; see 'mergeflow --help'",
    when: 'before start',
    make: (_fx, v) => ({ args: ['merge', v.cfg] }),
  },
  // ---- corrupt safetensors (each given as the only model; the run is refused while planning, in the CLI)
  {
    id: 'st-short-file',
    group: 'safetensors',
    input: 'a file of 5 bytes',
    exit: 1,
    stderr: 'mergeflow: {file}: file is 5 bytes, too short to be safetensors (needs an 8-byte header length)',
    when: 'before start',
    make: (fx, v) => {
      fs.writeFileSync(new URL(v.file), Buffer.from('hello'));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-huge-header-length',
    group: 'safetensors',
    input: 'a header length of 2^40 bytes',
    exit: 1,
    stderr: 'mergeflow: {file}: header length 1099511627776 is larger than 100000000 bytes; not a safetensors file',
    when: 'before start',
    make: (fx, v) => {
      const p = baseParts(fx);
      rawSafetensors(new URL(v.file).pathname, p.header, p.data, 1n << 40n);
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-header-past-end',
    group: 'safetensors',
    input: 'a header length past the end of the file (cut inside the header)',
    exit: 1,
    stderr:
      'mergeflow: {file}: header length … runs past the end of the 100-byte file; the file is truncated or not safetensors',
    when: 'before start',
    make: (fx, v) => {
      const whole = fs.readFileSync(new URL(fx.base));
      fs.writeFileSync(new URL(v.file), whole.subarray(0, 100));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-invalid-json',
    group: 'safetensors',
    input: 'a header that is not JSON',
    exit: 1,
    stderr: 'mergeflow: {file}: header is not valid JSON (…)',
    when: 'before start',
    make: (fx, v) => {
      rawSafetensors(new URL(v.file).pathname, '{"a": {"dtype": ', Buffer.alloc(0));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-invalid-utf8',
    group: 'safetensors',
    input: 'a header with invalid UTF-8 in a tensor name',
    exit: 1,
    stderr: 'mergeflow: {file}: header is not valid UTF-8; the file is corrupt or not safetensors',
    when: 'before start',
    make: (fx, v) => {
      const p = baseParts(fx);
      const h = Buffer.from(p.header.replace('layers.0.bias', 'layers.0.bia?'), 'utf8');
      h[h.indexOf('bia?') + 3] = 0xff;
      rawSafetensors(new URL(v.file).pathname, h, p.data);
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-header-array',
    group: 'safetensors',
    input: 'a header that is a JSON list',
    exit: 1,
    stderr: 'mergeflow: {file}: header must be a JSON object',
    when: 'before start',
    make: (fx, v) => {
      rawSafetensors(new URL(v.file).pathname, '[]', Buffer.alloc(0));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-overlapping-spans',
    group: 'safetensors',
    input: 'two tensors whose byte spans overlap',
    exit: 1,
    stderr: "mergeflow: {file}: tensor 'embed.weight' bytes [0, 256) overlap the previous tensor",
    when: 'before start',
    make: (fx, v) => {
      const h = JSON.stringify({
        'a.weight': { dtype: 'F32', shape: [64], data_offsets: [0, 256] },
        'embed.weight': { dtype: 'F32', shape: [64], data_offsets: [0, 256] },
      });
      rawSafetensors(new URL(v.file).pathname, h, Buffer.alloc(256));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-span-out-of-file',
    group: 'safetensors',
    input: 'a tensor span past the end of the file (a truncated download)',
    exit: 1,
    stderr:
      "mergeflow: {file}: tensor 'position_ids' ends at data byte 672 but the data section holds 572 bytes; the file is truncated",
    when: 'before start',
    make: (fx, v) => {
      const whole = fs.readFileSync(new URL(fx.base));
      fs.writeFileSync(new URL(v.file), whole.subarray(0, whole.length - 100));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-hole',
    group: 'safetensors',
    input: 'a gap between two tensor spans',
    exit: 1,
    stderr:
      "mergeflow: {file}: tensor 'b.weight' starts at byte 8 but the previous one ends at 4 (holes are not allowed)",
    when: 'before start',
    make: (fx, v) => {
      const h = JSON.stringify({
        'a.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        'b.weight': { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      });
      rawSafetensors(new URL(v.file).pathname, h, Buffer.alloc(12));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-trailing-bytes',
    group: 'safetensors',
    input: 'bytes after the last tensor',
    exit: 1,
    stderr: 'mergeflow: {file}: 16 trailing bytes after the last tensor; the header does not describe the file',
    when: 'before start',
    make: (fx, v) => {
      const p = baseParts(fx);
      rawSafetensors(new URL(v.file).pathname, p.header, Buffer.concat([p.data, Buffer.alloc(16)]));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-unknown-dtype',
    group: 'safetensors',
    input: 'a dtype mergeflow does not read (`F8_E4M3`)',
    exit: 1,
    stderr:
      'mergeflow: {file}: tensor \'layers.0.weight\': unsupported dtype "F8_E4M3"; mergeflow reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL',
    when: 'before start',
    make: (fx, v) => {
      const h = JSON.stringify({ 'layers.0.weight': { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } });
      rawSafetensors(new URL(v.file).pathname, h, Buffer.alloc(4));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-shape-span-mismatch',
    group: 'safetensors',
    input: "a shape whose size does not match the tensor's byte span",
    exit: 1,
    stderr: "mergeflow: {file}: tensor 'w': shape [2, 2] x F32 needs 16 bytes but data_offsets span 12",
    when: 'before start',
    make: (fx, v) => {
      const h = JSON.stringify({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } });
      rawSafetensors(new URL(v.file).pathname, h, Buffer.alloc(12));
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'st-metadata-not-strings',
    group: 'safetensors',
    input: '`__metadata__` with a non-string value',
    exit: 1,
    stderr: 'mergeflow: {file}: __metadata__ must map strings to strings',
    when: 'before start',
    make: (fx, v) => {
      rawSafetensors(new URL(v.file).pathname, JSON.stringify({ __metadata__: { format: 1 } }), Buffer.alloc(0));
      return oneModel(fx, v, v.file);
    },
  },
  // ---- checkpoint folders and indexes
  {
    id: 'index-shard-escapes',
    group: 'checkpoint folder',
    input: 'an index whose shard name leaves the folder (`../base.safetensors`)',
    exit: 1,
    stderr:
      'mergeflow: file://{dir}/cases/index-shard-escapes/model.safetensors.index.json: shard "../base.safetensors" is not a .safetensors file inside the checkpoint\'s folder; weight_map must name files beside the index',
    when: 'before start',
    make: (fx, v) => {
      const folder = casePath(fx, 'index-shard-escapes');
      fs.mkdirSync(folder, { recursive: true });
      fs.copyFileSync(new URL(fx.base), casePath(fx, 'base.safetensors'));
      fs.writeFileSync(
        `${folder}/model.safetensors.index.json`,
        JSON.stringify({ weight_map: { 'embed.weight': '../base.safetensors' } }),
      );
      return oneModel(fx, v, fileUri(folder));
    },
  },
  {
    id: 'index-shard-absolute',
    group: 'checkpoint folder',
    input: 'an index whose shard name is another URI (`s3://…`)',
    exit: 1,
    stderr:
      'mergeflow: file://{dir}/cases/index-shard-absolute/model.safetensors.index.json: shard "{s3}/in/base.safetensors" is not a .safetensors file inside the checkpoint\'s folder; weight_map must name files beside the index',
    when: 'before start',
    make: (fx, v) => {
      const folder = casePath(fx, 'index-shard-absolute');
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(
        `${folder}/model.safetensors.index.json`,
        JSON.stringify({ weight_map: { 'embed.weight': fx.s3Base } }),
      );
      return oneModel(fx, v, fileUri(folder));
    },
  },
  {
    id: 'index-invalid-json',
    group: 'checkpoint folder',
    input: 'an index file that is not JSON',
    exit: 1,
    stderr: 'mergeflow: file://{dir}/cases/index-invalid-json/model.safetensors.index.json: not a valid index JSON (…)',
    when: 'before start',
    make: (fx, v) => {
      const folder = casePath(fx, 'index-invalid-json');
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(`${folder}/model.safetensors.index.json`, '{"weight_map": ');
      return oneModel(fx, v, fileUri(folder));
    },
  },
  {
    id: 'folder-without-weights',
    group: 'checkpoint folder',
    input: 'a folder with neither model.safetensors nor an index',
    exit: 1,
    stderr:
      'mergeflow: file://{dir}/cases/folder-without-weights: not a checkpoint; expected a .safetensors file or a folder with model.safetensors or model.safetensors.index.json',
    when: 'before start',
    make: (fx, v) => {
      const folder = casePath(fx, 'folder-without-weights');
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(`${folder}/config.json`, '{}');
      return oneModel(fx, v, fileUri(folder));
    },
  },
  // ---- models that do not match the base
  {
    id: 'mismatch-shape',
    group: 'model mismatch',
    input: 'a model tensor of another shape',
    exit: 1,
    stderr:
      "mergeflow: model 'bad' tensor 'layers.0.weight' has shape [4,16] but the base has [8,8]; the models do not share an architecture",
    when: 'before start',
    make: async (fx, v) => {
      await editedBase(fx, new URL(v.file).pathname, (ts) =>
        ts.map((t) => (t.name === 'layers.0.weight' ? { ...t, shape: [4, 16] } : t)),
      );
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'mismatch-dtype',
    group: 'model mismatch',
    input: 'an integer tensor where the base has a float one',
    exit: 1,
    stderr:
      "mergeflow: model 'bad' tensor 'layers.0.bias' is I32 but the base is F32; float and integer tensors cannot be mixed",
    when: 'before start',
    make: async (fx, v) => {
      await editedBase(fx, new URL(v.file).pathname, (ts) =>
        ts.map((t) => (t.name === 'layers.0.bias' ? { ...t, dtype: 'I32' as const } : t)),
      );
      return oneModel(fx, v, v.file);
    },
  },
  {
    id: 'mismatch-missing-tensor',
    group: 'model mismatch',
    input: "a model without one of the base's tensors",
    exit: 1,
    stderr:
      "mergeflow: model 'bad' ({file}) has no tensor 'layers.0.weight' that the base has; all models must share the base architecture",
    when: 'before start',
    make: async (fx, v) => {
      await editedBase(fx, new URL(v.file).pathname, (ts) => ts.filter((t) => t.name !== 'layers.0.weight'));
      return oneModel(fx, v, v.file);
    },
  },
  // ---- weights
  {
    id: 'weights-nan',
    group: 'weights',
    input: 'NaN in a model (refused: a NaN makes every merged entry of its tensor NaN)',
    exit: 1,
    stderr:
      "mergeflow: {file}: tensor 'layers.0.bias' holds 2 non-finite values (first: NaN at element 3); repair or drop this checkpoint",
    when: 'in the run',
    make: async (fx, v) => {
      const vals = new Float32Array(8).fill(0.5);
      vals[3] = NaN;
      vals[6] = NaN;
      await editedBase(fx, new URL(v.file).pathname, (ts) =>
        ts.map((t) => (t.name === 'layers.0.bias' ? { ...t, data: fromFloat32(vals, 'F32') } : t)),
      );
      return run(v, fx, dataFreeDoc(fx, v.out, { models: [fx.models[0], { name: 'bad', checkpoint: v.file }] }), [
        '--wait',
      ]);
    },
  },
  {
    id: 'weights-inf-base',
    group: 'weights',
    input: 'an infinity in the base (TIES)',
    exit: 1,
    stderr:
      "mergeflow: {file}: tensor 'layers.0.weight' holds 1 non-finite value (first: -Infinity at element 0); repair or drop this checkpoint",
    when: 'in the run',
    make: async (fx, v) => {
      const vals = new Float32Array(64).fill(0.25);
      vals[0] = -Infinity;
      await editedBase(fx, new URL(v.file).pathname, (ts) =>
        ts.map((t) => (t.name === 'layers.0.weight' ? { ...t, data: fromFloat32(vals, 'F32') } : t)),
      );
      return run(v, fx, dataFreeDoc(fx, v.out, { method: 'ties', base: v.file }), ['--wait']);
    },
  },
  // ---- the store
  {
    id: 'missing-local-file',
    group: 'store',
    input: 'a model file that does not exist',
    exit: 1,
    stderr: 'mergeflow: {file}: checkpoint not found; check the path or S3 key',
    when: 'before start',
    make: (fx, v) => oneModel(fx, v, v.file),
  },
  {
    id: 'missing-s3-object',
    group: 'store',
    input: 'an S3 model key that does not exist',
    exit: 1,
    stderr: 'mergeflow: {s3}/in/nope.safetensors: checkpoint not found; check the path or S3 key',
    when: 'before start',
    make: (fx, v) =>
      run(v, fx, {
        method: 'ties',
        base: fx.s3Base,
        models: [{ name: 'ghost', checkpoint: `${fx.s3}/in/nope.safetensors` }],
        output: v.out,
      }),
  },
  {
    id: 'missing-s3-bucket',
    group: 'store',
    input: 'an S3 bucket that does not exist',
    exit: 1,
    stderr: 'mergeflow: s3://mergeflow-no-such-bucket/base.safetensors: checkpoint not found; check the path or S3 key',
    when: 'before start',
    make: (fx, v) => run(v, fx, dataFreeDoc(fx, v.out, { base: 's3://mergeflow-no-such-bucket/base.safetensors' })),
  },
  {
    id: 's3-no-credentials',
    group: 'store',
    input: 'no S3 credentials anywhere (no variables, profile or stack.env)',
    exit: 1,
    stderr:
      "mergeflow: {s3}/in/base.safetensors: no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE ('mergeflow stack up' writes them for the local stack)",
    when: 'before start',
    make: (fx, v) => ({
      ...run(v, fx, { method: 'ties', base: fx.s3Base, models: fx.s3Models, output: v.out }),
      env: {
        MERGEFLOW_HOME: casePath(fx, 'empty-home'),
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_SHARED_CREDENTIALS_FILE: casePath(fx, 'no-credentials'),
        AWS_CONFIG_FILE: casePath(fx, 'no-config'),
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    }),
  },
  {
    id: 's3-wrong-secret',
    group: 'store',
    input: 'a wrong S3 secret key',
    exit: 1,
    stderr:
      "mergeflow: {s3}/in/base.safetensors: access denied by S3 (HTTP 403) on bucket '…'; grant these credentials access to the bucket or set AWS_ACCESS_KEY_ID / AWS_PROFILE to ones that have it",
    when: 'before start',
    make: (fx, v) => ({
      ...run(v, fx, { method: 'ties', base: fx.s3Base, models: fx.s3Models, output: v.out }),
      env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
    }),
  },
  // ---- servers
  {
    id: 's3-down',
    group: 'servers',
    input: 'the S3 server is down (a closed port)',
    exit: 1,
    stderr:
      "mergeflow: {s3}/in/base.safetensors: cannot reach the S3 endpoint http://127.0.0.1:1; start it with 'mergeflow stack up' or set AWS_ENDPOINT_URL_S3",
    when: 'before start',
    make: (fx, v) => ({
      ...run(v, fx, { method: 'ties', base: fx.s3Base, models: fx.s3Models, output: v.out }),
      env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1' },
    }),
  },
  {
    id: 'temporal-down',
    group: 'servers',
    input: 'the Temporal server is down (a closed port)',
    exit: 1,
    stderr:
      "mergeflow: cannot reach Temporal at 127.0.0.1:1 …; start the local stack with 'mergeflow stack up' or set TEMPORAL_ADDRESS",
    when: 'before start',
    make: (fx, v) => ({ ...run(v, fx, dataFreeDoc(fx, v.out)), env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } }),
  },
  // ---- AdaMerging
  {
    id: 'ada-tasks-empty',
    group: 'AdaMerging',
    input: 'no tasks (`tasks: []`)',
    exit: 2,
    stderr: invalid('tasks: at least one task'),
    when: 'before start',
    make: (fx, v) => run(v, fx, adaDoc(fx, v.out, { tasks: [] })),
  },
  {
    id: 'ada-task-no-data',
    group: 'AdaMerging',
    input: 'a task without `data`',
    exit: 2,
    stderr: invalid('tasks.1.data: expected string, received undefined'),
    when: 'before start',
    make: (fx, v) => {
      const { data: _data, ...noData } = fx.ada.tasks[1];
      return run(v, fx, adaDoc(fx, v.out, { tasks: [fx.ada.tasks[0], noData] }));
    },
  },
  {
    id: 'ada-steps-not-number',
    group: 'AdaMerging',
    input: '`steps: many`',
    exit: 2,
    stderr: invalid('parameters.steps: expected number, received string'),
    when: 'before start',
    make: (fx, v) => run(v, fx, adaDoc(fx, v.out, { parameters: { steps: 'many' } })),
  },
  {
    id: 'ada-param-typo',
    group: 'AdaMerging',
    input: 'a typo in a parameter (`stepz:`)',
    exit: 2,
    stderr: invalid(`parameters.stepz: unknown key; expected only granularity, variant, steps, …`),
    when: 'before start',
    make: (fx, v) => run(v, fx, adaDoc(fx, v.out, { parameters: { stepz: 4 } })),
  },
  {
    id: 'ada-granularity',
    group: 'AdaMerging',
    input: '`granularity: block`',
    exit: 2,
    stderr: invalid('parameters.granularity: expected one of "task"|"layer"'),
    when: 'before start',
    make: (fx, v) => run(v, fx, adaDoc(fx, v.out, { parameters: { granularity: 'block' } })),
  },
  {
    id: 'ada-models-key',
    group: 'AdaMerging',
    input: '`models:` instead of `tasks:`',
    exit: 2,
    stderr: invalid('tasks: expected array, received undefined', `models: unknown key; expected only ${ADA_KEYS}`),
    when: 'before start',
    make: (fx, v) => {
      const { tasks, ...doc } = adaDoc(fx, v.out);
      return run(v, fx, { ...doc, models: tasks });
    },
  },
  {
    id: 'ada-output-file',
    group: 'AdaMerging',
    input: 'a `.safetensors` output (AdaMerging writes a folder)',
    exit: 1,
    stderr:
      'mergeflow: output file://{out}: AdaMerging writes a Hugging Face folder (model, λ, losses, report); give a folder',
    when: 'before start',
    make: (fx, v) => run(v, fx, { ...adaDoc(fx, v.out), output: v.out }),
  },
  {
    id: 'ada-head-width',
    group: 'AdaMerging',
    input: 'a head whose width is not the encoder projection',
    exit: 1,
    stderr:
      "mergeflow: task 'task1': head {file} is for 6-dim embeddings (weight [5,6]) but the encoder projects to 4; use the head trained on this encoder",
    when: 'before start',
    make: async (fx, v) => {
      const head = await writeHead(
        v.file,
        { weight: new Float32Array(CLASSES * 6), classes: CLASSES, dim: 6, logitScale: 0 },
        'wide',
        Array.from({ length: CLASSES }, (_, i) => `c${i}`),
      );
      return run(v, fx, adaDoc(fx, v.out, { tasks: [fx.ada.tasks[0], { ...fx.ada.tasks[1], head }] }));
    },
  },
  {
    id: 'ada-data-size',
    group: 'AdaMerging',
    input: 'data of another image size',
    exit: 1,
    stderr:
      "mergeflow: task 'task0': data {file} holds 1x16x16 images (CxHxW) but the encoder takes 1x8x8; resize the data",
    when: 'before start',
    make: async (fx, v) => {
      await writeDataset(v.file, { inputs: new Uint8Array(3 * 16 * 16), shape: [3, 1, 16, 16] });
      return run(v, fx, adaDoc(fx, v.out, { tasks: [{ ...fx.ada.tasks[0], data: v.file }, fx.ada.tasks[1]] }));
    },
  },
  {
    id: 'ada-extra-tensor',
    group: 'AdaMerging',
    input: 'a task model with a tensor the base lacks',
    exit: 1,
    stderr:
      "mergeflow: task 'task1': model … has tensor 'extra.bias' that the base lacks; the models must share the base's tensor set",
    when: 'before start',
    make: async (fx, v) => {
      const folder = casePath(fx, 'ada-extra-tensor');
      fs.mkdirSync(folder, { recursive: true });
      const model = fx.ada.tasks[1].model;
      await editedBase(
        fx,
        `${folder}/model.safetensors`,
        (ts) => [...ts, { name: 'extra.bias', dtype: 'F32', shape: [2], data: new Uint8Array(8) }],
        joinUri(model, 'model.safetensors'),
      );
      fs.copyFileSync(new URL(joinUri(model, 'config.json')), `${folder}/config.json`);
      return run(
        v,
        fx,
        adaDoc(fx, v.out, { tasks: [fx.ada.tasks[0], { ...fx.ada.tasks[1], model: fileUri(folder) }] }),
      );
    },
  },
];
