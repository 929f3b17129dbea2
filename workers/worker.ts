/**
 * A mergeflow worker process: one Worker on the shared task queue, running every workflow and activity, and one
 * on this process's own queue (`<queue>-<host>-<pid>`), running only AdaMerging epochs: an epoch reports that
 * queue, so the run's next epoch comes back to the process that holds θ0 and the task vectors in memory.
 */
import * as os from 'node:os';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { backendDevice, initBackend } from '../core/tensor/backend';
import { gpuFallbackNote } from '../core/tensor/native';
import { installTemporalRuntimeLogger, logger } from './logger';
import { workflowSource } from './workflow_bundle';
import { freeLoopbackPort, METRICS_ADDRESS_ENV, metricsInterceptor, startMetricsServer } from './metrics';
import { temporalDownMessage, temporalTarget, TemporalTarget } from './temporal_config';

export interface WorkerOptions {
  target?: TemporalTarget;
  /** Parallel activities on this worker (default: MERGEFLOW_WORKER_ACTIVITIES or 2). */
  maxActivities?: number;
}

export const SHUTDOWN_GRACE_ENV = 'MERGEFLOW_SHUTDOWN_GRACE';
const DEFAULT_SHUTDOWN_GRACE = '30s';

/**
 * How long a stopping worker (SIGTERM, SIGINT) lets running activities finish before it cancels them; a
 * cancelled AdaMerging epoch writes its state first. MERGEFLOW_SHUTDOWN_GRACE: a duration such as 90s, 10m or
 * 500ms (a bare number is milliseconds).
 */
export function shutdownGraceMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = (env[SHUTDOWN_GRACE_ENV] ?? '').trim() || DEFAULT_SHUTDOWN_GRACE;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v);
  if (!m) throw new Error(`${SHUTDOWN_GRACE_ENV}=${v} is not a duration: use a number with ms, s, m or h, such as 90s`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

let metricsStarted: Promise<string | undefined> | undefined;

/**
 * With MERGEFLOW_METRICS_ADDRESS set: installs the Temporal runtime with its Prometheus exporter on a free
 * loopback port and serves mergeflow's metrics plus the SDK's on that address. Once per process.
 */
function startMetrics(): Promise<string | undefined> {
  metricsStarted ??= (async () => {
    const address = process.env[METRICS_ADDRESS_ENV]?.trim();
    if (!address) {
      installTemporalRuntimeLogger();
      return undefined;
    }
    const sdkPort = await freeLoopbackPort();
    if (!installTemporalRuntimeLogger(`127.0.0.1:${sdkPort}`)) {
      logger.warn('the Temporal runtime was installed before the metrics: /metrics has mergeflow figures only');
    }
    const server = await startMetricsServer(address, sdkPort);
    return server.address;
  })();
  return metricsStarted;
}

/** This process's own task queue. */
export function workerQueueName(taskQueue: string): string {
  return `${taskQueue}-${os.hostname()}-${process.pid}`;
}

export async function createWorker(
  opts: WorkerOptions = {},
): Promise<{ worker: Worker; affinityWorker: Worker; connection: NativeConnection }> {
  const grace = shutdownGraceMs();
  const metrics = await startMetrics();
  const target = opts.target ?? temporalTarget();
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
  } catch (e) {
    throw new Error(temporalDownMessage(target, e), { cause: e });
  }
  // Model math (evaluation, AdaMerging, Frank-Wolfe gradients) runs on the best TensorFlow.js backend here.
  // The device is the one TensorFlow really uses (never a GPU it fell back from).
  const backend = await initBackend(undefined, (msg) => logger.warn(msg));
  const device = backendDevice();
  const fellBack = gpuFallbackNote();
  if (fellBack) logger.warn(fellBack);
  const workerQueue = workerQueueName(target.taskQueue);
  const activities = createActivities({ workerQueue });
  const worker = await Worker.create({
    connection,
    namespace: target.namespace,
    taskQueue: target.taskQueue,
    ...workflowSource(),
    activities,
    maxConcurrentActivityTaskExecutions: opts.maxActivities ?? Number(process.env.MERGEFLOW_WORKER_ACTIVITIES ?? 2),
    shutdownGraceTime: grace,
    interceptors: { activity: [metricsInterceptor] },
  });
  const affinityWorker = await Worker.create({
    connection,
    namespace: target.namespace,
    taskQueue: workerQueue,
    activities: { adaMergingEpoch: activities.adaMergingEpoch },
    maxConcurrentActivityTaskExecutions: 1,
    shutdownGraceTime: grace,
    interceptors: { activity: [metricsInterceptor] },
  });
  logger.info(
    {
      address: target.address,
      namespace: target.namespace,
      taskQueue: target.taskQueue,
      workerQueue,
      backend,
      device,
      shutdownGraceSeconds: grace / 1000,
      ...(metrics ? { metrics: `http://${metrics}/metrics` } : {}),
    },
    'worker ready',
  );
  return { worker, affinityWorker, connection };
}

export async function runWorker(opts: WorkerOptions = {}): Promise<void> {
  const { worker, affinityWorker, connection } = await createWorker(opts);
  try {
    await Promise.all([worker.run(), affinityWorker.run()]);
  } finally {
    await connection.close();
  }
}
