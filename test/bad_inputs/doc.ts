/**
 * docs/bad-inputs.md, generated from the cases (test/bad_inputs/cases.ts), so the table and the tests cannot
 * drift: `node dist/test/bad_inputs/doc.js --write` rewrites it; test/bad-input.test.ts checks it is current.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CASES, Group } from './cases';

export const DOC_PATH = path.join(__dirname, '..', '..', '..', 'docs', 'bad-inputs.md');

const INTRO = `# Bad inputs

What \`mergeflow\` does with each bad input it knows about. Every row is a test: \`test/bad-input.test.ts\`
runs the real CLI (\`dist/cli/main.js\`, a child process) against the real local Temporal and S3 servers and
checks the exact stderr, the exit code, and that nothing was lost: the inputs' bytes and mtimes are unchanged,
nothing is written under the output, and no workflow is left running or retrying. This page is generated from
\`test/bad_inputs/cases.ts\` by \`node dist/test/bad_inputs/doc.js --write\`; the test fails when it is stale.

Exit codes: **2** for a usage or config error (commander, the config schema), **1** for everything else.
Config errors print a first line \`mergeflow: FILE: invalid config\` and then one line per problem; every other
failure prints exactly one line starting with \`mergeflow:\`. In the messages, \`{cfg}\` is the config file,
\`{file}\` the case's broken file (a \`file://\` URI), \`{dir}\` the folder of the inputs, \`{s3}\` their S3 prefix,
\`{base}\` the base checkpoint, and \`…\` text that varies (a parser's own words, a port, a path).

**When** says where the refusal happens. *before start*: \`mergeflow run\` plans the merge in the CLI from
headers only (the same \`planMerge\` / \`planAdaMerging\` the worker runs), so missing objects, corrupt headers,
models that do not match the base and unreachable servers fail before any workflow exists. *in the run*: the
fault is in tensor data, which only the workers read; the workflow fails at once (the error is
non-retryable), nothing is published, and the failed run keeps its committed work under
\`.mergeflow-work/RUN/\` beside the output (for a later resume or \`gc\`), never under the output's name. There \`run --wait\` first reports the phases it saw
(\`[RUN] merging (2/6)\`, one line each) and the message is the last line.

**NaN and ±Inf in weights are refused**, naming the file and the tensor. A NaN in any model makes every merged
entry of that tensor NaN (an average, a task vector, TIES' trimmed magnitudes and elected signs all carry it),
so a warning would still publish a broken model, and a merged model is usually used far from the person who
started the run. The check is one pass over values already decoded for the merge. Repair or drop the
checkpoint (or merge without it).
`;

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, '<br>');
}

function code(s: string): string {
  return s
    .split('\n')
    .map((l) => `\`${l.replace(/\|/g, '\\|')}\``)
    .join('<br>');
}

/** The page as prettier formats it (so \`prettier --check\` and the staleness test agree). */
export async function renderDoc(): Promise<string> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(DOC_PATH)) ?? {};
  return prettier.format(rawDoc(), { ...options, parser: 'markdown' });
}

function rawDoc(): string {
  const groups = [...new Set(CASES.map((c) => c.group))] as Group[];
  const out = [INTRO];
  out.push(`${CASES.length} cases.\n`);
  for (const g of groups) {
    out.push(`## ${g}\n`);
    out.push('| case | bad input | exit | when | stderr |');
    out.push('| ---- | --------- | ---: | ---- | ------ |');
    for (const c of CASES.filter((x) => x.group === g)) {
      out.push(`| \`${c.id}\` | ${cell(c.input)} | ${c.exit} | ${c.when} | ${code(c.stderr)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

if (require.main === module && process.argv.includes('--write')) {
  void renderDoc().then((text) => {
    fs.writeFileSync(DOC_PATH, text);
    console.log(`wrote ${DOC_PATH} (${CASES.length} cases)`);
  });
}
