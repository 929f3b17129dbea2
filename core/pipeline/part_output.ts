/**
 * The output of a shard, gathered into large blocks before it goes to the store's writer: many small tensors
 * become one write, and a block is never reused after it was handed over (S3 writers keep the chunks they are
 * given until a part is full).
 */
import { ObjectWriter } from '../store';

export const OUTPUT_BLOCK = 16 * 1024 * 1024;

export class PartOutput {
  private block: Uint8Array;
  private used = 0;
  bytes = 0;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly blockSize = OUTPUT_BLOCK,
  ) {
    this.block = new Uint8Array(blockSize);
  }

  /** Room for `length` bytes, to fill before the next call (flushing the block first when it is too full). */
  async reserve(length: number): Promise<Uint8Array> {
    if (this.used + length > this.block.byteLength) {
      await this.flush();
      if (length > this.block.byteLength) this.block = new Uint8Array(Math.max(length, this.blockSize));
    }
    const v = this.block.subarray(this.used, this.used + length);
    this.used += length;
    this.bytes += length;
    return v;
  }

  /** Hand the filled part of the block to the writer; `last` when nothing follows. */
  async flush(last = false): Promise<void> {
    if (this.used === 0) return;
    const full = this.block.subarray(0, this.used);
    this.block = last ? new Uint8Array(0) : new Uint8Array(Math.max(this.blockSize, this.block.byteLength));
    this.used = 0;
    await this.writer.write(full);
  }
}
