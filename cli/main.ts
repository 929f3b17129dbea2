#!/usr/bin/env node
/** The `mergeflow` command. */
import { Command, CommanderError } from 'commander';
import { applyStackEnv } from '../infra/stack';
import { VERSION } from '../core/version';
import { closeClient } from './client';
import { reportError } from './errors';
import { demoCommand } from './commands/demo';
import { runCommand } from './commands/run';
import { cancelCommand, listCommand, resultsCommand, statusCommand, watchCommand } from './commands/runs';
import { stackCommand } from './commands/stack';
import { workerCommand } from './commands/worker';
import { validateCommand } from './commands/validate';
import { suiteCommand } from './commands/suite';
import { predictCommand } from './commands/predict';
import { evalCommand } from './commands/eval';
import { resumeCommand } from './commands/resume';
import { gcCommand } from './commands/gc';
import { scheduleCommand } from './commands/schedule';

/** Commander's usage error as the one `mergeflow:` line every failure prints, pointing at the command's help. */
function usageLine(c: Command, msg: string): string {
  const names: string[] = [];
  for (let cur: Command | null = c; cur; cur = cur.parent) names.unshift(cur.name());
  const text = msg
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\.$/, '');
  return `mergeflow: ${text}; see '${names.join(' ')} --help'\n`;
}

export function buildProgram(): Command {
  const program = new Command('mergeflow')
    .version(VERSION)
    .description(
      'Merge fine-tuned checkpoints into one multi-task model as durable Temporal workflows.\n' +
        'Temporal and S3 come from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and AWS_ENDPOINT_URL_S3 / AWS_REGION / the AWS\n' +
        "credential chain; when unset, the local stack's settings (.mergeflow/stack.env, from 'mergeflow stack up') are used.",
    );
  for (const c of [
    runCommand(),
    validateCommand(),
    statusCommand(),
    watchCommand(),
    listCommand(),
    resultsCommand(),
    cancelCommand(),
    resumeCommand(),
    gcCommand(),
    scheduleCommand(),
    workerCommand(),
    stackCommand(),
    demoCommand(),
    suiteCommand(),
    predictCommand(),
    evalCommand(),
  ]) {
    program.addCommand(c);
  }
  // usage errors (unknown option, bad option value) exit 2 from every (sub)command; help and version exit 0
  const exitOnError = (err: CommanderError): never => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
      process.exit(0);
    process.exit(2);
  };
  const applyExit = (c: Command): void => {
    c.exitOverride(exitOnError);
    // one line, like every other failure: `mergeflow: <what is wrong>; see 'mergeflow run --help'`
    c.configureOutput({ outputError: (msg, write) => write(usageLine(c, msg)) });
    c.commands.forEach(applyExit);
  };
  applyExit(program);
  return program;
}

async function main(): Promise<void> {
  // mergeflow pins its AWS SDK; the SDK's notice about future Node versions is not actionable per command.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  applyStackEnv();
  await buildProgram().parseAsync(process.argv);
  await closeClient();
}

if (require.main === module) {
  main().catch(reportError);
}
