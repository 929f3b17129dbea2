/** The Temporal client for CLI commands (one connection per process). */
import type { Client, Connection } from '@temporalio/client';
import { temporalDownMessage, temporalTarget, TemporalTarget } from '../workers/temporal_config';

let cached: { client: Client; target: TemporalTarget } | undefined;

export async function connectClient(): Promise<{ client: Client; target: TemporalTarget }> {
  if (cached) return cached;
  const target = temporalTarget();
  // loaded on first use: a command that fails on its config or inputs never pays for the Temporal client
  const { Client, Connection } = await import('@temporalio/client');
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: target.address,
      tls: target.tls,
      apiKey: target.apiKey,
      connectTimeout: '5s',
    });
    await connection.workflowService.getSystemInfo({});
  } catch (e) {
    throw new Error(temporalDownMessage(target, e), { cause: e });
  }
  cached = { client: new Client({ connection, namespace: target.namespace }), target };
  return cached;
}

export async function closeClient(): Promise<void> {
  await cached?.client.connection.close();
  cached = undefined;
}
