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

/**
 * Installs the Temporal runtime once per process, its logs forwarded to pino; with `metricsBindAddress`
 * (host:port) the SDK also serves its runtime metrics there for Prometheus. false: it was installed before.
 */
export function installTemporalRuntimeLogger(metricsBindAddress?: string): boolean {
  if (installed) return false;
  installed = true;
  const level = (process.env.MERGEFLOW_TEMPORAL_LOG_LEVEL ?? 'INFO') as LogLevel;
  Runtime.install({
    ...(metricsBindAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsBindAddress } } } }
      : {}),
    logger: new DefaultLogger(level, (entry) => {
      const fields = { ...(entry.meta ?? {}), source: 'temporal' };
      const l = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      logger[l === 'trace' ? 'trace' : l](fields, entry.message);
    }),
  });
  return true;
}
