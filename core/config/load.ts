/** Read a YAML config, apply --set overrides, validate. Errors list each problem as `path: what was expected`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { joinUri, normalizeUri } from '../store/uri';
import { MergeConfig, mergeConfigSchema, METHOD_NAMES, sharedFieldsSchema } from './schema';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid config\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parse `a.b.c=value`; the value is read as YAML (numbers, booleans, lists) and falls back to a string. */
export function applySet(doc: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError('--set', [`'${assignment}': expected path=value, e.g. parameters.scaling=0.4`]);
  const keys = assignment.slice(0, eq).split('.');
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(raw);
  } catch {
    value = raw;
  }
  let cur: Record<string, unknown> = doc;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = /^\d+$/.test(keys[i + 1]) ? [] : {};
    else if (typeof next !== 'object')
      throw new ConfigError('--set', [`${keys.slice(0, i + 1).join('.')}: is not an object`]);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/** One line per problem, naming the key: `path: what was expected` (one line per unknown key). */
function formatIssue(i: z.core.$ZodIssue): string[] {
  const at = (path: readonly PropertyKey[]) => (path.length ? path.map(String).join('.') : '(top level)');
  if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${at([...i.path, k])}: unknown key; ${i.message}`);
  if (i.code === 'invalid_union' && i.path.length === 1 && i.path[0] === 'method') return [];
  return [`${at(i.path)}: ${i.message.replace(/^(Invalid input|Invalid option|Too small|Too big): /, '')}`];
}

/** The files a checkpoint URI may stand for: the .safetensors itself, or a folder and its model.safetensors. */
function inputFiles(uri: string): string[] {
  const u = uri.replace(/\/+$/, '');
  return u.endsWith('.safetensors') ? [u] : [u, joinUri(u, 'model.safetensors')];
}

/** A problem line when the output would overwrite an input (the same object, or an input's folder). */
function outputClash(cfg: MergeConfig): string | undefined {
  const out = cfg.output.replace(/\/+$/, '');
  const outFile = out.endsWith('.safetensors') ? out : joinUri(out, 'model.safetensors');
  const inputs: [string, string][] = [['base', cfg.base]];
  if (cfg.method === 'adamerging') {
    for (const t of cfg.tasks) if (typeof t.model === 'string') inputs.push([`task '${t.name}' model`, t.model]);
  } else if (cfg.method === 'frank_wolfe') {
    if (Array.isArray(cfg.pool)) for (const m of cfg.pool) inputs.push([`candidate '${m.name}'`, m.checkpoint]);
  } else {
    // a `latest_under` model is found when the run starts; only named checkpoints can be compared here
    for (const m of cfg.models) if (typeof m.checkpoint === 'string') inputs.push([`model '${m.name}'`, m.checkpoint]);
  }
  for (const [what, uri] of inputs) {
    const files = inputFiles(uri);
    if (files.includes(out) || files.includes(outFile))
      return `output: ${cfg.output} would overwrite the ${what} (${uri}); write the merge somewhere else`;
  }
  return undefined;
}

/** Validate a parsed document; paths in it are resolved against `cwd`. */
export function validateConfig(doc: unknown, source: string, cwd = process.cwd()): MergeConfig {
  const r = mergeConfigSchema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.flatMap(formatIssue);
    const method = (doc as { method?: unknown } | null)?.method;
    if (!METHOD_NAMES.includes(method as string)) {
      // the union cannot pick a variant: name the method, then check the fields every method shares
      const got = method === undefined ? 'nothing' : `'${String(method)}'`;
      problems.unshift(`method: expected one of ${METHOD_NAMES.join(' | ')}, got ${got}`);
      const shared = sharedFieldsSchema.safeParse(doc);
      if (!shared.success) problems.push(...shared.error.issues.flatMap(formatIssue));
    }
    throw new ConfigError(source, problems);
  }
  const cfg = r.data;
  cfg.base = normalizeUri(cfg.base, cwd);
  cfg.output = normalizeUri(cfg.output, cwd);
  if (cfg.method === 'adamerging') {
    cfg.tasks = cfg.tasks.map((t) => ({
      ...t,
      model:
        typeof t.model === 'string'
          ? normalizeUri(t.model, cwd)
          : { latest_under: normalizeUri(t.model.latest_under, cwd) },
      head: normalizeUri(t.head, cwd),
      data: normalizeUri(t.data, cwd),
    }));
  } else if (cfg.method === 'frank_wolfe') {
    const opt = (u: string | undefined) => (u === undefined ? undefined : normalizeUri(u, cwd));
    cfg.pool = Array.isArray(cfg.pool)
      ? cfg.pool.map((m) => ({ ...m, checkpoint: normalizeUri(m.checkpoint, cwd) }))
      : { prefix: normalizeUri(cfg.pool.prefix, cwd) };
    cfg.targets = cfg.targets.map((t) => ({
      ...t,
      head: normalizeUri(t.head, cwd),
      proxy: opt(t.proxy),
      data: opt(t.data),
    }));
    if (cfg.parameters.start && /[/]/.test(cfg.parameters.start))
      cfg.parameters.start = normalizeUri(cfg.parameters.start, cwd);
  } else {
    cfg.models = cfg.models.map((m) => ({
      ...m,
      checkpoint:
        typeof m.checkpoint === 'string'
          ? normalizeUri(m.checkpoint, cwd)
          : { latest_under: normalizeUri(m.checkpoint.latest_under, cwd) },
    }));
  }
  const clash = outputClash(cfg);
  if (clash) throw new ConfigError(source, [clash]);
  return cfg;
}

export function loadConfig(file: string, sets: readonly string[] = []): MergeConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [
      `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    ]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(file, [`not valid YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError(file, ['(top level): expected a mapping with method, base, models, output']);
  }
  for (const s of sets) applySet(doc as Record<string, unknown>, s);
  return validateConfig(doc, file, path.dirname(path.resolve(file)));
}
