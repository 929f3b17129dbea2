/**
 * Inputs shared by the bad-input cases: a small valid base and two models on the local disk and in S3, a tiny
 * AdaMerging setup on the local disk, and helpers that write a config or a deliberately broken checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCheckpoints } from '../../core/synthetic';
import { AdaFixture, writeAdaFixture } from '../../core/synthetic_adamerging';
import { Checkpoint, DType, writeTensors } from '../../core/safetensors';
import { putObject } from '../../core/store';
import { fileUri, s3Prefix, tmpDir } from '../helpers/env';

export interface Fixture {
  /** Local folder holding every input (placeholder {dir} in messages). */
  dir: string;
  /** S3 prefix holding the S3 copies of the inputs (placeholder {s3}). */
  s3: string;
  base: string;
  models: { name: string; checkpoint: string }[];
  s3Base: string;
  s3Models: { name: string; checkpoint: string }[];
  ada: AdaFixture;
}

export async function buildFixture(): Promise<Fixture> {
  const dir = tmpDir('bad-inputs');
  const s3 = s3Prefix('bad-inputs');
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 1, models: 2, dim: 8, layers: 1 });
  const s3Base = `${s3}/in/base.safetensors`;
  await putObject(s3Base, fs.readFileSync(fileURLToPath(ck.base)));
  const s3Models = await Promise.all(
    ck.models.map(async (m, i) => {
      const uri = `${s3}/in/model-${i}.safetensors`;
      await putObject(uri, fs.readFileSync(fileURLToPath(m.checkpoint)));
      return { name: m.name, checkpoint: uri };
    }),
  );
  const ada = await writeAdaFixture(fileUri(path.join(dir, 'ada')));
  return { dir, s3, base: ck.base, models: ck.models, s3Base, s3Models, ada };
}

/** A fresh local path under the fixture folder for one case's own file. */
export function casePath(fx: Fixture, name: string): string {
  const d = path.join(fx.dir, 'cases');
  fs.mkdirSync(d, { recursive: true });
  return path.join(d, name);
}

/** A valid Task Arithmetic config over the local inputs, with `over` applied on top. */
export function dataFreeDoc(fx: Fixture, output: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { method: 'task_arithmetic', base: fx.base, models: fx.models, output, ...over };
}

/** A valid AdaMerging config over the local tiny setup, with `over` applied on top. */
export function adaDoc(fx: Fixture, output: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    method: 'adamerging',
    base: fx.ada.pretrained,
    tasks: fx.ada.tasks,
    // AdaMerging writes a folder
    output: output.replace(/\.safetensors$/, ''),
    parameters: { steps: 4, batch_size: 4, steps_per_epoch: 2 },
    ...over,
  };
}

/** The base's bytes split as (8-byte length, header JSON text, data). */
export function baseParts(fx: Fixture): { header: string; data: Buffer } {
  const b = fs.readFileSync(fileURLToPath(fx.base));
  const n = Number(b.readBigUInt64LE(0));
  return { header: b.subarray(8, 8 + n).toString('utf8'), data: b.subarray(8 + n) };
}

/** A safetensors file from a header (text or raw bytes) and data; `length` overrides the 8-byte header length. */
export function rawSafetensors(file: string, header: string | Buffer, data: Buffer, length?: bigint): string {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

/** A copy of the base with some tensors changed, dropped or added. */
export async function editedBase(
  fx: Fixture,
  file: string,
  edit: (
    tensors: { name: string; dtype: DType; shape: number[]; data: Uint8Array }[],
  ) => { name: string; dtype: DType; shape: number[]; data: Uint8Array }[],
  from = fx.base,
): Promise<string> {
  const src = await Checkpoint.open(from);
  const tensors = await Promise.all(
    src.tensors.map(async (t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      data: await src.readBytes(t.name),
    })),
  );
  await writeTensors(fileUri(file), edit(tensors));
  return file;
}
