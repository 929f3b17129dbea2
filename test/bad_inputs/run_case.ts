/** Running one catalogue case through the real CLI, and matching its stderr against the case's template. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileUri, runCli, CliResult } from '../helpers/env';
import { BadInputCase, Vars } from './cases';
import { casePath, Fixture } from './fixture';

export function caseVars(fx: Fixture, c: BadInputCase): Vars {
  return {
    cfg: casePath(fx, `${c.id}.yaml`),
    file: fileUri(casePath(fx, `${c.id}.safetensors`)),
    dir: fx.dir,
    s3: fx.s3,
    out: path.join(fx.dir, 'out', c.id, 'merged.safetensors'),
    base: fx.base,
  };
}

/** The template as a regular expression: {name} becomes the value, … any text on the line, the rest is literal. */
export function templateRegex(template: string, v: Vars): RegExp {
  const parts = template.split(/(\{[a-z0-9]+\}|…)/);
  const src = parts
    .map((p) => {
      if (p === '…') return '[^\\n]*?';
      const m = /^\{([a-z0-9]+)\}$/.exec(p);
      const text = m ? String((v as unknown as Record<string, string>)[m[1]] ?? p) : p;
      return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${src}$`);
}

/** sha256 and mtime of a file, or 'absent'. */
function fingerprint(file: string): string {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return 'absent';
  return `${createHash('sha256').update(fs.readFileSync(file)).digest('hex')} ${fs.statSync(file).mtimeMs}`;
}

export interface CaseRun {
  vars: Vars;
  /** The case's own file and config, fingerprinted before and after the call. */
  own: { before: string[]; after: string[] };
  runId?: string;
  result: CliResult;
}

/** Write the case's inputs, call the CLI (with a known run id for `run`), return what it printed. */
export async function runCase(fx: Fixture, c: BadInputCase, runId: string, env: NodeJS.ProcessEnv): Promise<CaseRun> {
  const vars = caseVars(fx, c);
  const call = await c.make(fx, vars);
  const isRun = call.args[0] === 'run';
  const args = isRun ? [...call.args, '--id', runId] : call.args;
  const own = [fileURLToPath(vars.file), vars.cfg];
  const before = own.map(fingerprint);
  const result = await runCli(args, { ...env, ...call.env });
  return { vars, own: { before, after: own.map(fingerprint) }, runId: isRun ? runId : undefined, result };
}
