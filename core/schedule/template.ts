/**
 * Outputs versioned by the scheduled time: `{scheduled_time}` in a config's output becomes the time the run was
 * scheduled for, as `YYYYMMDDTHHMMSSZ` (UTC). Pure: the workflow calls it with the time from its search attributes.
 */
import type { MergeConfig } from '../config/schema';

const PLACEHOLDER = /\{scheduled_time\}|%7Bscheduled_time%7D/gi;

export function scheduledStamp(t: Date): string {
  return t
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export function hasScheduledTime(output: string): boolean {
  return new RegExp(PLACEHOLDER.source, 'i').test(output);
}

export function fillScheduledTime<C extends Pick<MergeConfig, 'output'>>(config: C, t: Date): C {
  if (!hasScheduledTime(config.output)) return config;
  return { ...config, output: config.output.replace(PLACEHOLDER, scheduledStamp(t)) };
}

/** Whether any model of the config (a data-free model, an AdaMerging task's model) names the newest checkpoint under a prefix. */
export function hasLatestUnder(config: MergeConfig): boolean {
  if ('models' in config) return config.models.some((m) => typeof m.checkpoint !== 'string');
  if ('tasks' in config) return config.tasks.some((t) => typeof t.model !== 'string');
  return false;
}
