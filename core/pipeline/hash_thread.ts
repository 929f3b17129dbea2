/**
 * The hashing thread of a shard stream (input_hasher.ts): BLAKE3 per input file of the spans the stream hands
 * out, read straight from the stream's shared read buffers. Messages are hashed in the order the spans were
 * handed out, so the digests are those of the bytes in the shard's order. After each span it raises the input's
 * counter in `done`, which the stream waits on before it overwrites the buffer the span was in.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { blake3Maker, HashEngine, StreamingHash } from '../hash/blake3';

interface Setup {
  buffers: SharedArrayBuffer[];
  files: number[];
  done: Int32Array;
  engine: HashEngine;
}

/** [input, file, offset in the input's buffer, length] or 'digests'. */
export type HashMessage = [number, number, number, number] | 'digests';

const { buffers, files, done, engine } = workerData as Setup;
const make = blake3Maker(engine);
const hashes: (StreamingHash | undefined)[][] = files.map((n) =>
  new Array<StreamingHash | undefined>(n).fill(undefined),
);

async function handle(m: HashMessage): Promise<void> {
  if (m === 'digests') {
    parentPort?.postMessage(hashes.map((fs) => fs.map((h) => (h ? h.digest() : ''))));
    return;
  }
  const [input, file, offset, length] = m;
  const h = (hashes[input][file] ??= await make());
  h.update(new Uint8Array(buffers[input], offset, length));
  Atomics.add(done, input, 1);
  Atomics.notify(done, input);
}

// in arrival order, one at a time (making a WebAssembly hash is asynchronous); a failure is an unhandled
// rejection, which ends the thread, and the stream reports it ('error')
let chain = Promise.resolve();
parentPort?.on('message', (m: HashMessage) => {
  chain = chain.then(() => handle(m));
});
