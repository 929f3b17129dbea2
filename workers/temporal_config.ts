/**
 * Where Temporal is, from the standard variables: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS (true/false), TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH,
 * TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME. MERGEFLOW_TASK_QUEUE picks the task queue.
 */
import * as fs from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

export interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
  apiKey?: string;
  tls?: TLSConfig | boolean;
}

export function temporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const certPath = env.TEMPORAL_TLS_CLIENT_CERT_PATH;
  const keyPath = env.TEMPORAL_TLS_CLIENT_KEY_PATH;
  const caPath = env.TEMPORAL_TLS_SERVER_CA_CERT_PATH;
  let tls: TLSConfig | boolean | undefined;
  if (certPath && keyPath) {
    tls = {
      clientCertPair: { crt: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) },
      serverRootCACertificate: caPath ? fs.readFileSync(caPath) : undefined,
      serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME,
    };
  } else if (env.TEMPORAL_TLS === 'true' || env.TEMPORAL_API_KEY) {
    tls = true;
  }
  return {
    address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: env.MERGEFLOW_TASK_QUEUE ?? 'mergeflow',
    apiKey: env.TEMPORAL_API_KEY,
    tls,
  };
}

/** One line telling the user what to do when Temporal cannot be reached. */
export function temporalDownMessage(t: TemporalTarget, e: unknown): string {
  return `cannot reach Temporal at ${t.address} (${(e as Error).message.split('\n')[0]}); start the local stack with 'mergeflow stack up' or set TEMPORAL_ADDRESS`;
}
