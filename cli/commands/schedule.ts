/**
 * `mergeflow schedule`: nightly (or any cron) merges as Temporal Schedules. Each action starts the config's
 * workflow; `{scheduled_time}` in its output and `latest_under` checkpoints are filled in by the run itself, so
 * every run merges the newest fine-tunes into a folder named for the time it was scheduled for.
 */
import { Command, InvalidArgumentError } from 'commander';
import {
  ScheduleAlreadyRunning,
  ScheduleDescription,
  ScheduleNotFoundError,
  ScheduleOptions,
  ScheduleOverlapPolicy,
} from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { loadConfig } from '../../core/config/load';
import { isDataFree } from '../../core/config/schema';
import { connectClient } from '../client';
import { printJson } from '../format';
import { UsageError } from '../errors';
import { intArg } from '../args';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
};

function overlapArg(v: string): ScheduleOverlapPolicy {
  const p = OVERLAP[v.toLowerCase()];
  if (!p) throw new InvalidArgumentError(`expected one of ${Object.keys(OVERLAP).join(', ')}`);
  return p;
}

function durationArg(v: string): string {
  if (!/^\d+(ms|s|m|h|d)$/.test(v)) throw new InvalidArgumentError('expected a duration such as 1h, 30m or 1d');
  return v;
}

async function scheduleHandle(name: string) {
  const { client } = await connectClient();
  const handle = client.schedule.getHandle(name);
  try {
    return { handle, desc: await handle.describe() };
  } catch (e) {
    if (e instanceof ScheduleNotFoundError)
      throw new UsageError(`no schedule '${name}'; 'mergeflow schedule list' shows the schedules`);
    throw e;
  }
}

/** The parts of a description worth printing (plain JSON). */
function summary(d: ScheduleDescription) {
  return {
    name: d.scheduleId,
    cron: String(d.action.memo?.cron ?? ''),
    timezone: d.spec.timezone ?? 'UTC',
    workflowType: d.action.workflowType,
    overlap: d.policies.overlap,
    catchupWindow: d.policies.catchupWindow,
    paused: d.state.paused,
    note: d.state.note,
    recentRuns: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      runId: a.action.workflow.workflowId,
    })),
    nextTimes: d.info.nextActionTimes.map((t) => t.toISOString()),
    runningRuns: d.info.runningActions.map((a) => a.workflow.workflowId),
  };
}

function createCommand(): Command {
  return new Command('create')
    .description('create a schedule, or update the one of that name')
    .argument('<name>', 'schedule name (its id in Temporal)')
    .argument('<config>', 'merge config file (YAML); may use {scheduled_time} in output and latest_under checkpoints')
    .requiredOption('--cron <expr>', 'cron expression, e.g. "0 2 * * *" for 02:00 every day')
    .option('--timezone <tz>', 'IANA time zone the cron expression is read in (default UTC)')
    .option(
      '--overlap <policy>',
      `when a run is still going: ${Object.keys(OVERLAP).join(' | ')}`,
      overlapArg,
      ScheduleOverlapPolicy.SKIP,
    )
    .option(
      '--catchup-window <duration>',
      'how late a missed run may still start (e.g. after downtime)',
      durationArg,
      '1h',
    )
    .option('-s, --set <path=value>', 'override a config field (repeatable)', collect, [])
    .option(
      '--heartbeat-timeout <seconds>',
      'seconds without a heartbeat before a unit is retried',
      intArg('--heartbeat-timeout', 1),
      60,
    )
    .option('--paused', 'create it paused')
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        file: string,
        opts: {
          cron: string;
          timezone?: string;
          overlap: ScheduleOverlapPolicy;
          catchupWindow: string;
          set: string[];
          heartbeatTimeout: number;
          paused?: boolean;
          json?: boolean;
        },
      ) => {
        const config = loadConfig(file, opts.set);
        const { client, target } = await connectClient();
        const options: ScheduleOptions = {
          scheduleId: name,
          spec: { cronExpressions: [opts.cron], timezone: opts.timezone },
          action: {
            type: 'startWorkflow',
            workflowType: isDataFree(config) ? 'dataFreeMerge' : 'adaMergingRun',
            // the server appends the scheduled time to this id
            workflowId: `merge-${name}`,
            taskQueue: target.taskQueue,
            args: [{ config, heartbeatTimeoutSeconds: opts.heartbeatTimeout }],
            // the server keeps cron only as calendars: keep the text for describe
            memo: { schedule: name, cron: opts.cron },
          },
          policies: { overlap: opts.overlap, catchupWindow: opts.catchupWindow as Duration },
          state: { paused: opts.paused ?? false },
        };
        let verb = 'created';
        try {
          await client.schedule.create(options);
        } catch (e) {
          if (!(e instanceof ScheduleAlreadyRunning)) throw e;
          verb = 'updated';
          await client.schedule.getHandle(name).update((prev) => ({
            ...prev,
            spec: options.spec,
            action: options.action,
            policies: { ...prev.policies, ...options.policies },
            state: { ...prev.state, paused: opts.paused ?? prev.state.paused },
          }));
        }
        const desc = await client.schedule.getHandle(name).describe();
        if (opts.json) return printJson({ status: verb, ...summary(desc) });
        console.log(
          `${verb} schedule ${name}: ${opts.cron} (${desc.spec.timezone ?? 'UTC'}), next ${summary(desc).nextTimes[0] ?? 'none'}`,
        );
      },
    );
}

function describeCommand(): Command {
  return new Command('describe')
    .description('show a schedule: spec, policies, its last runs and the next times')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const s = summary((await scheduleHandle(name)).desc);
      if (opts.json) return printJson(s);
      console.log(
        `${s.name}  ${s.cron}  (${s.timezone})  ${s.workflowType}  overlap ${s.overlap}${s.paused ? '  PAUSED' : ''}`,
      );
      if (s.note) console.log(`  note ${s.note}`);
      console.log('  last runs:');
      for (const r of s.recentRuns.slice(-10)) console.log(`    ${r.scheduledAt}  ${r.runId}`);
      if (!s.recentRuns.length) console.log('    none yet');
      console.log(`  next: ${s.nextTimes.slice(0, 5).join(', ') || 'none'}`);
    });
}

function listCommand(): Command {
  return new Command('list')
    .description('list the schedules')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { client } = await connectClient();
      const rows = [];
      // the list carries no spec or action memo: describe each one
      for await (const s of client.schedule.list()) {
        const d = summary(await client.schedule.getHandle(s.scheduleId).describe());
        rows.push({
          name: d.name,
          cron: d.cron,
          timezone: d.timezone,
          workflowType: d.workflowType,
          paused: d.paused,
          lastRun: d.recentRuns.at(-1)?.runId,
          next: d.nextTimes[0],
        });
      }
      if (opts.json) return printJson(rows);
      if (!rows.length) return console.log('no schedules');
      for (const r of rows)
        console.log(
          `${r.name.padEnd(32)} ${r.cron.padEnd(16)} ${r.paused ? 'paused ' : 'active '} next ${r.next ?? '-'}`,
        );
    });
}

function simple(
  name: string,
  description: string,
  act: (h: Awaited<ReturnType<typeof scheduleHandle>>['handle']) => Promise<void>,
  done: string,
): Command {
  return new Command(name)
    .description(description)
    .argument('<name>', 'schedule name')
    .action(async (schedule: string) => {
      const { handle } = await scheduleHandle(schedule);
      await act(handle);
      console.log(`${done} ${schedule}`);
    });
}

export function scheduleCommand(): Command {
  return new Command('schedule')
    .description('nightly and other recurring merges (Temporal Schedules)')
    .addCommand(createCommand())
    .addCommand(listCommand())
    .addCommand(describeCommand())
    .addCommand(simple('pause', 'stop starting runs until unpaused', (h) => h.pause('paused with mergeflow'), 'paused'))
    .addCommand(simple('unpause', 'start runs again', (h) => h.unpause(), 'unpaused'))
    .addCommand(simple('trigger', 'start a run now (the overlap policy applies)', (h) => h.trigger(), 'triggered'))
    .addCommand(simple('delete', 'delete the schedule (its runs are kept)', (h) => h.delete(), 'deleted'));
}
