/**
 * The hashing thread of a shard stream (input_hasher.ts): sha256 per input file of the spans the stream hands
 * out, read straight from the stream's shared read buffers. Messages arrive in the order the spans were handed
 * out, so the digests are those a hash on the merge thread would give. After each span it raises the input's
 * counter in `done`, which the stream waits on before it overwrites that input's buffer.
 */
import { createHash, Hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface Setup {
  buffers: SharedArrayBuffer[];
  files: number[];
  done: Int32Array;
}

/** [input, file, offset in the input's buffer, length] or 'digests'. */
export type HashMessage = [number, number, number, number] | 'digests';

const { buffers, files, done } = workerData as Setup;
const hashes: (Hash | undefined)[][] = files.map((n) => new Array<Hash | undefined>(n).fill(undefined));

parentPort?.on('message', (m: HashMessage) => {
  if (m === 'digests') {
    parentPort?.postMessage(hashes.map((fs) => fs.map((h) => (h ? h.digest('hex') : ''))));
    return;
  }
  const [input, file, offset, length] = m;
  (hashes[input][file] ??= createHash('sha256')).update(new Uint8Array(buffers[input], offset, length));
  Atomics.add(done, input, 1);
  Atomics.notify(done, input);
});
