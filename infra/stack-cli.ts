#!/usr/bin/env node
/**
 * Tiny entry for the local stack: `node dist/infra/stack-cli.js up|down|status [--json]`.
 * (`mergeflow stack ...` calls the same functions.)
 */
import { StackError, stackDown, stackStatus, stackUp, type StackStatus } from './stack';

const USAGE = 'usage: node dist/infra/stack-cli.js up|down|status [--json]';

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const cmd = argv.filter((a) => a !== '--json')[0];
  const opts = json ? { quiet: true } : {};
  let result: StackStatus;
  switch (cmd) {
    case 'up':
      result = await stackUp(opts);
      break;
    case 'down':
      result = await stackDown(opts);
      break;
    case 'status':
      result = await stackStatus(opts);
      break;
    case '-h':
    case '--help':
      console.log(USAGE);
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
  if (json) console.log(JSON.stringify(result, null, 2));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const msg =
      err instanceof StackError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(`stack: error: ${msg}`);
    process.exitCode = 1;
  },
);
