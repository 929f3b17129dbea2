/** Worker-thread entry for suite training jobs (see pool.ts): one backend per thread, jobs one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import { BackendChoice, initBackend } from '../tensor/backend';
import { Job, PretrainJob, pretrainTrainJob, runJob } from './jobs';
import { Trainer } from './train';

const port = parentPort;
if (!port) throw new Error('train_worker.js must run in a worker thread');
const ready = initBackend((workerData as { backend?: BackendChoice }).backend, () => undefined);

/** The replica of a data-parallel run this worker holds. */
let replica: Trainer | undefined;

type Msg =
  | { id: number; type: 'job'; job: Job }
  | { id: number; type: 'dp-init'; job: PretrainJob }
  | { id: number; type: 'dp-grads'; t: number; shards: number[]; count: number }
  | { id: number; type: 'dp-apply'; t: number; grads: Float32Array[]; loss: number }
  | { id: number; type: 'dp-finish'; keep: boolean };

port.on('message', async (msg: Msg) => {
  try {
    const backend = await ready;
    switch (msg.type) {
      case 'job': {
        let last = 0;
        const out = runJob(msg.job, (step, total, loss) => {
          const now = Date.now();
          if (step === total || now - last > 250) {
            last = now;
            port.postMessage({ id: msg.id, type: 'progress', step, total, loss });
          }
        });
        const transfer = Object.values(out.params).map((v) => v.buffer as ArrayBuffer);
        port.postMessage({ id: msg.id, type: 'done', out, backend }, transfer);
        return;
      }
      case 'dp-init':
        replica?.dispose();
        replica = new Trainer(pretrainTrainJob(msg.job));
        port.postMessage({ id: msg.id, type: 'done', backend });
        return;
      case 'dp-grads': {
        const parts = msg.shards.map((s) => ({ shard: s, ...replica!.shardGrads(msg.t, s, msg.count) }));
        port.postMessage(
          { id: msg.id, type: 'done', out: parts },
          parts.flatMap((p) => p.grads.map((g) => g.buffer as ArrayBuffer)),
        );
        return;
      }
      case 'dp-apply':
        replica!.applyGrads(msg.t, msg.grads, msg.loss);
        return; // no reply: the next request to this worker is ordered after it
      case 'dp-finish': {
        const out = msg.keep ? replica!.result() : undefined;
        replica!.dispose();
        replica = undefined;
        port.postMessage({ id: msg.id, type: 'done', out, backend });
        return;
      }
    }
  } catch (e) {
    port.postMessage({ id: msg.id, type: 'error', message: (e as Error).message, stack: (e as Error).stack });
  }
});
