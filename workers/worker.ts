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
import { temporalDownMessage, temporalTarget, TemporalTarget } from './temporal_config';

export interface WorkerOptions {
  target?: TemporalTarget;
  /** Parallel activities on this worker (default: MERGEFLOW_WORKER_ACTIVITIES or 2). */
  maxActivities?: number;
}

/** This process's own task queue. */
export function workerQueueName(taskQueue: string): string {
  return `${taskQueue}-${os.hostname()}-${process.pid}`;
}

export async function createWorker(
  opts: WorkerOptions = {},
): Promise<{ worker: Worker; affinityWorker: Worker; connection: NativeConnection }> {
  installTemporalRuntimeLogger();
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
    workflowsPath: require.resolve('../workflows'),
    activities,
    maxConcurrentActivityTaskExecutions: opts.maxActivities ?? Number(process.env.MERGEFLOW_WORKER_ACTIVITIES ?? 2),
  });
  const affinityWorker = await Worker.create({
    connection,
    namespace: target.namespace,
    taskQueue: workerQueue,
    activities: { adaMergingEpoch: activities.adaMergingEpoch },
    maxConcurrentActivityTaskExecutions: 1,
  });
  logger.info(
    {
      address: target.address,
      namespace: target.namespace,
      taskQueue: target.taskQueue,
      workerQueue,
      backend,
      device,
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
