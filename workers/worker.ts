/** A mergeflow worker: one Worker on the shared task queue, running every workflow and activity. */
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

export async function createWorker(
  opts: WorkerOptions = {},
): Promise<{ worker: Worker; connection: NativeConnection }> {
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
  const worker = await Worker.create({
    connection,
    namespace: target.namespace,
    taskQueue: target.taskQueue,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities(),
    maxConcurrentActivityTaskExecutions: opts.maxActivities ?? Number(process.env.MERGEFLOW_WORKER_ACTIVITIES ?? 2),
  });
  logger.info(
    { address: target.address, namespace: target.namespace, taskQueue: target.taskQueue, backend, device },
    'worker ready',
  );
  return { worker, connection };
}

export async function runWorker(opts: WorkerOptions = {}): Promise<void> {
  const { worker, connection } = await createWorker(opts);
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}
