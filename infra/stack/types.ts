/** The local stack's public types and its user-facing error. */

export type ServiceName = 'temporal' | 's3';

export interface StackOptions {
  /** State folder; default env MERGEFLOW_HOME, else <repo>/.mergeflow. */
  home?: string;
  /** Folder holding the temporal and weed (or minio) binaries; default env MERGEFLOW_BIN, else <home>/bin. */
  binDir?: string;
  /** Ports; default env MERGEFLOW_TEMPORAL_PORT / MERGEFLOW_S3_PORT / MERGEFLOW_S3_CONSOLE_PORT, else
   *  the ports recorded in stack.env by the last `up`, else 7233 / 9000 / 9001. */
  temporalPort?: number;
  s3Port?: number;
  s3ConsolePort?: number;
  /** The Temporal Web UI; default env MERGEFLOW_TEMPORAL_UI_PORT, else the Temporal port + 1000. */
  temporalUiPort?: number;
  /** Extra `--dynamic-config-value KEY=JSON` entries for the Temporal dev server, added to those of
   *  env MERGEFLOW_TEMPORAL_DYNAMIC_CONFIG (comma-separated KEY=VALUE list). */
  temporalDynamicConfig?: string[];
  /** How long `up` waits for each service to answer (default 60 000 ms). */
  timeoutMs?: number;
  /** How long `down` waits after SIGTERM before SIGKILL (default 15 000 ms). */
  stopTimeoutMs?: number;
  /** Run infra/install.sh when a binary is missing (default true). */
  install?: boolean;
  /** Environment to read settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where human-readable lines go (default console.log). */
  log?: (line: string) => void;
  /** Print nothing (same as log: () => {}). */
  quiet?: boolean;
}

export interface ServiceStatus {
  name: ServiceName;
  state: 'running' | 'stopped';
  pid: number | null;
  /** Temporal: host:port (gRPC). S3: endpoint URL. */
  address: string;
  /** Whether the service answered a quick probe (Temporal: TCP connect; S3: its health URL). */
  answering: boolean;
  /** S3 only: the web console (SeaweedFS: the filer's file browser; MinIO: its console). */
  console?: string;
  /** S3 only: which server runs (seaweedfs or minio). */
  server?: string;
  /** Temporal only: the Web UI. */
  ui?: string;
  log: string;
}

export interface StackStatus {
  home: string;
  envFile: string;
  bucket: string;
  services: Record<ServiceName, ServiceStatus>;
}

/** A one-line, user-facing failure (the CLI prints `message` and exits 1). */
export class StackError extends Error {
  override name = 'StackError';
}
