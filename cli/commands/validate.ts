/** `mergeflow validate CONFIG`: check a config (schema only) and print it resolved, without starting anything. */
import { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig } from '../../core/config/load';
import { printJson } from '../format';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a merge config and print it with defaults filled in; starts nothing')
    .argument('<config>', 'merge config file (YAML)')
    .option('-s, --set <path=value>', 'override a config field (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action((file: string, opts: { set: string[]; json?: boolean }) => {
      const cfg = loadConfig(file, opts.set);
      if (opts.json) printJson(cfg);
      else process.stdout.write(stringify(cfg));
    });
}
