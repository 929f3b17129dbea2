/**
 * Prometheus metrics of a worker process, on one endpoint (MERGEFLOW_METRICS_ADDRESS, host:port, path /metrics):
 * mergeflow's own figures (prom-client: bytes merged, optimiser steps, epoch and activity seconds, Node's process
 * metrics) followed by the Temporal SDK's runtime telemetry (workers, pollers, task latencies), which the SDK's
 * own Prometheus exporter serves on a loopback port that this endpoint reads at each scrape.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';

export const METRICS_ADDRESS_ENV = 'MERGEFLOW_METRICS_ADDRESS';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'mergeflow_process_' });

const bytesMerged = new Counter({
  name: 'mergeflow_bytes_merged_total',
  help: 'Bytes of merged tensors written (committed shard parts)',
  labelNames: ['method'],
  registers: [registry],
});
const shardsMerged = new Counter({
  name: 'mergeflow_shards_merged_total',
  help: 'Shards merged and committed',
  labelNames: ['method'],
  registers: [registry],
});
const optimiserSteps = new Counter({
  name: 'mergeflow_optimiser_steps_total',
  help: 'AdaMerging optimiser (Adam) steps taken by this worker',
  registers: [registry],
});
const epochSeconds = new Histogram({
  name: 'mergeflow_epoch_seconds',
  help: 'Wall time of an AdaMerging epoch activity',
  buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
  registers: [registry],
});
const activitySeconds = new Histogram({
  name: 'mergeflow_activity_seconds',
  help: 'Wall time of each activity attempt, by activity type and outcome',
  labelNames: ['activity', 'outcome'],
  buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});

/** What an activity's result says about the work done; activities stay unaware of metrics. */
function record(activity: string, args: unknown[], result: unknown): void {
  if (activity === 'mergeShard') {
    const method = String((args[0] as { method?: string } | undefined)?.method ?? 'unknown');
    const bytes = Number((result as { bytes?: number } | undefined)?.bytes ?? 0);
    bytesMerged.inc({ method }, bytes);
    shardsMerged.inc({ method });
  } else if (activity === 'adaMergingEpoch') {
    const r = result as { step?: number; resumedFrom?: number; seconds?: number };
    if (typeof r?.step === 'number' && typeof r.resumedFrom === 'number')
      optimiserSteps.inc(Math.max(0, r.step - r.resumedFrom));
    if (typeof r?.seconds === 'number') epochSeconds.observe(r.seconds);
  }
}

/** An activity interceptor that times every attempt and records the figures of the results above. */
export const metricsInterceptor: ActivityInterceptorsFactory = (ctx) => {
  const inbound: ActivityInboundCallsInterceptor = {
    async execute(input, next) {
      const end = activitySeconds.startTimer({ activity: ctx.info.activityType });
      try {
        const result = await next(input);
        end({ outcome: 'completed' });
        record(ctx.info.activityType, input.args, result);
        return result;
      } catch (e) {
        end({ outcome: 'failed' });
        throw e;
      }
    },
  };
  return { inbound };
};

/** Splits "host:port" (an IPv6 host in brackets); the port must be an integer 0-65535 (0: any free port). */
export function parseAddress(value: string, source = METRICS_ADDRESS_ENV): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new Error(`${source}=${value} is not an address: expected HOST:PORT, such as 0.0.0.0:9464`);
  }
  return { host: m[1] ?? m[2], port };
}

/** A free loopback port for the SDK's exporter (it cannot report the port it bound). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function temporalText(temporalPort: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${temporalPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.text() : `# Temporal SDK metrics unavailable: HTTP ${res.status}\n`;
  } catch (e) {
    return `# Temporal SDK metrics unavailable: ${(e as Error).message}\n`;
  }
}

export interface MetricsServer {
  /** The address it listens on (the real port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

/** Serves GET /metrics on `address`: mergeflow's registry, then the SDK exporter's text from `temporalPort`. */
export async function startMetricsServer(address: string, temporalPort: number): Promise<MetricsServer> {
  const { host, port } = parseAddress(address);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    Promise.all([registry.metrics(), temporalText(temporalPort)]).then(
      ([own, sdk]) => res.writeHead(200, { 'content-type': registry.contentType }).end(`${own}\n${sdk}`),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot serve metrics on ${address} (${e.code ?? e.message}): set ${METRICS_ADDRESS_ENV}`)),
    );
    server.listen({ host, port }, resolve);
  });
  server.unref();
  const bound = server.address() as net.AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
