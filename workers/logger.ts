/** pino for mergeflow's own logs; the Temporal runtime's logs are forwarded into it. */
import pino from 'pino';
import { DefaultLogger, LogLevel, Runtime } from '@temporalio/worker';

/** JSON lines on stderr, so stdout stays for command output (`--json`). */
export const logger = pino(
  { name: 'mergeflow', level: process.env.MERGEFLOW_LOG_LEVEL ?? 'info' },
  pino.destination(2),
);

export function setLogLevel(level: string): void {
  logger.level = level;
}

let installed = false;

export function installTemporalRuntimeLogger(): void {
  if (installed) return;
  installed = true;
  const level = (process.env.MERGEFLOW_TEMPORAL_LOG_LEVEL ?? 'INFO') as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const fields = { ...(entry.meta ?? {}), source: 'temporal' };
      const l = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      logger[l === 'trace' ? 'trace' : l](fields, entry.message);
    }),
  });
}
