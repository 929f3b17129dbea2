/**
 * BLAKE3, the hash of every input byte a merge reads: the native and WebAssembly engines give the published
 * digests and agree with each other on any split of the input, in shared memory too; MERGEFLOW_HASH is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blake3Hex, blake3Maker, HashEngine, hashEngine } from '../core/hash/blake3';

const ENGINES: HashEngine[] = ['native', 'wasm'];

test('both BLAKE3 engines give the published digests', async () => {
  for (const engine of ENGINES) {
    // the BLAKE3 reference vectors for "" and "abc"
    assert.equal(
      await blake3Hex(new Uint8Array(0), engine),
      'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
      engine,
    );
    assert.equal(
      await blake3Hex(new TextEncoder().encode('abc'), engine),
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
      engine,
    );
  }
});

test('the engines agree on 3 MB fed in uneven pieces from shared memory', async () => {
  const bytes = new Uint8Array(new SharedArrayBuffer(3 << 20));
  let s = 12345;
  for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  const digests: string[] = [];
  for (const engine of ENGINES) {
    const h = await blake3Maker(engine)();
    for (let o = 0, step = 1; o < bytes.length; o += step, step = step * 3 + 7) h.update(bytes.subarray(o, o + step));
    digests.push(h.digest());
  }
  assert.equal(digests[0], digests[1]);
  assert.equal(digests[0], await blake3Hex(bytes.slice(), 'native'), 'pieces hash as the whole');
});

test('MERGEFLOW_HASH picks an engine, and a wrong value is refused by name', () => {
  assert.equal(hashEngine({ MERGEFLOW_HASH: 'wasm' }), 'wasm');
  assert.equal(hashEngine({ MERGEFLOW_HASH: 'native' }), 'native');
  assert.equal(hashEngine({}), 'native', 'the native engine loads on this platform');
  assert.throws(() => hashEngine({ MERGEFLOW_HASH: 'md5' }), /MERGEFLOW_HASH='md5' is not a hash engine/);
});
