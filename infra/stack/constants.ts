/** Fixed settings of the local stack shared by several modules. */
import type { ServiceName } from './types';

export const HOST = '127.0.0.1';
export const DEFAULT_PORTS = { temporal: 7233, s3: 9000, s3Console: 9001 } as const;
/** The Temporal Web UI's default port: the Temporal port + 1000, as `temporal server start-dev` does. */
export const TEMPORAL_UI_OFFSET = 1000;
export const PORT_ENV = {
  temporal: 'MERGEFLOW_TEMPORAL_PORT',
  s3: 'MERGEFLOW_S3_PORT',
  s3Console: 'MERGEFLOW_S3_CONSOLE_PORT',
  temporalUi: 'MERGEFLOW_TEMPORAL_UI_PORT',
} as const;
export const DEFAULT_BUCKET = 'mergeflow';
export const DEFAULT_REGION = 'us-east-1';

/** Human names of the services, for log lines and errors. */
export const LABEL: Record<ServiceName, string> = { temporal: 'Temporal', s3: 'S3' };
