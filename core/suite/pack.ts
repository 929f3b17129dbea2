/**
 * A built suite, packed small enough to commit: every model (pretrained + 24 fine-tuned) as F16 safetensors, the
 * heads as they are, and the suite's manifest. The task data is not packed: core/data rebuilds it from the seed
 * (the mnist and fashion-mnist packages), and unpacking checks its sha256 against the packed manifest, so an
 * unpacked suite has the original's data byte for byte and its models to F16 precision.
 *
 *   packSuite(built, dir)   -> dir/pack.json, dir/models/<name>/{config.json,model.safetensors}, dir/heads/*
 *   unpackSuite(dir, out)   -> a complete suite at out (data regenerated, models widened to F32), suite.json last
 *
 * A `targets` pack holds the pretrained and the target models only (what the demo and AdaMerging need): the
 * suite it unpacks to says so (`build.unpacked.models`), and asking it for irrelevant models is refused.
 */
import { z } from 'zod';
import { buildTaskData, TASKS, writeTaskDatasets } from '../data/tasks';
import { Checkpoint, DType, fromFloat32, writeTensors } from '../safetensors';
import { joinUri, putObject, readJson, sha256Of, storeFor } from '../store';
import { VERSION } from '../version';
import { openSuite, SUITE_FILE, SUITE_VERSION, SuiteError, suiteFolder, suiteManifestSchema } from './manifest';

export const PACK_FILE = 'pack.json';
export const PACK_FORMAT = 'mergeflow-suite-pack';
/** Which fine-tuned models a pack holds: all of them, or only the targets' (with the pretrained model). */
export type PackModels = 'all' | 'targets';

const packSchema = z.object({
  format: z.literal(PACK_FORMAT),
  dtype: z.enum(['F16', 'F32']),
  /** Absent in packs written before it existed: all. */
  models: z.enum(['all', 'targets']).optional(),
  /** The built suite's manifest, unchanged (its `files` hash the F32 originals). */
  suite: suiteManifestSchema,
  /** sha256 of every packed file, by path relative to the pack folder. */
  files: z.record(z.string(), z.string()),
  packedAt: z.string(),
  mergeflow: z.string(),
});
export type SuitePack = z.infer<typeof packSchema>;

/** The model folders a pack holds, relative to the suite: models/pretrained and models/<task>. */
function modelFolders(m: SuitePack['suite'], models: PackModels = 'all'): string[] {
  const tasks = models === 'targets' ? m.tasks.filter((t) => m.targets.includes(t.name)) : m.tasks;
  return [m.pretrained, ...tasks.map((t) => t.model)];
}

const getObject = (uri: string): Promise<Uint8Array> => storeFor(uri).readAll(uri);

/** Copy a safetensors file, re-encoding every float tensor as `dtype` (metadata kept). */
async function copyAs(from: string, to: string, dtype: DType): Promise<void> {
  const ck = await Checkpoint.open(from);
  const tensors = [];
  for (const t of ck.tensors) {
    tensors.push({ name: t.name, dtype, shape: t.shape, data: fromFloat32(await ck.readFloat32(t.name), dtype) });
  }
  await writeTensors(to, tensors, ck.files[0].header.metadata);
}

/** Pack the built suite at `suiteUri` into `out` (a folder URI or path). */
export async function packSuite(
  suiteUri: string,
  out: string,
  dtype: 'F16' | 'F32' = 'F16',
  models: PackModels = 'all',
): Promise<SuitePack> {
  const suite = await openSuite(suiteUri);
  if (suite.manifest.build.unpacked && (suite.manifest.build.unpacked as { models?: string }).models === 'targets')
    throw new SuiteError(`${suite.uri}: unpacked from a targets-only pack; pack the suite it came from`);
  const root = suiteFolder(out);
  const m = suite.manifest;
  const written: string[] = [];
  for (const rel of modelFolders(m, models)) {
    const cfg = await getObject(joinUri(suite.uri, rel, 'config.json'));
    await putObject(joinUri(root, rel, 'config.json'), cfg);
    await copyAs(joinUri(suite.uri, rel, 'model.safetensors'), joinUri(root, rel, 'model.safetensors'), dtype);
    written.push(`${rel}/config.json`, `${rel}/model.safetensors`);
  }
  for (const t of m.tasks) {
    await putObject(joinUri(root, t.head), await getObject(joinUri(suite.uri, t.head)));
    written.push(t.head);
  }
  const files: Record<string, string> = {};
  for (const rel of written.sort()) {
    const uri = joinUri(root, rel);
    const st = await storeFor(uri).stat(uri);
    files[rel] = await sha256Of(uri, st!.size);
  }
  const pack: SuitePack = {
    format: PACK_FORMAT,
    dtype,
    models,
    suite: m,
    files,
    packedAt: new Date().toISOString(),
    mergeflow: VERSION,
  };
  await putObject(joinUri(root, PACK_FILE), Buffer.from(JSON.stringify(pack, null, 1) + '\n', 'utf8'));
  return pack;
}

/** Read and check a pack's manifest (version, hashes of the packed files). */
export async function openPack(dir: string): Promise<SuitePack> {
  const root = suiteFolder(dir);
  const file = joinUri(root, PACK_FILE);
  const raw = (await readJson(file, (why) => new SuiteError(`${file}: not valid JSON (${why})`))) as {
    suite?: { version?: unknown };
  };
  if (raw?.suite?.version !== SUITE_VERSION)
    throw new SuiteError(
      `${file}: packs suite version ${String(raw?.suite?.version)}, this mergeflow reads ${SUITE_VERSION}`,
    );
  const r = packSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SuiteError(`${file}: not a valid suite pack (${i.path.join('.') || 'top level'}: ${i.message})`);
  }
  return r.data;
}

/**
 * Unpack the pack at `dir` into a complete suite at `out`: task data rebuilt from the seed and checked against
 * the packed manifest's hashes, models widened to F32, heads copied, suite.json written last.
 */
export async function unpackSuite(
  dir: string,
  out: string,
  onStep?: (what: string) => void,
): Promise<SuitePack['suite']> {
  const started = Date.now();
  const src = suiteFolder(dir);
  const root = suiteFolder(out);
  const pack = await openPack(src);
  const m = pack.suite;
  for (const [rel, sha] of Object.entries(pack.files)) {
    const uri = joinUri(src, rel);
    const st = await storeFor(uri).stat(uri);
    if (!st)
      throw new SuiteError(`${uri}: missing from the suite pack; restore it (git checkout) or rebuild the suite`);
    if ((await sha256Of(uri, st.size)) !== sha)
      throw new SuiteError(`${uri}: sha256 differs from ${PACK_FILE}; restore it (git checkout) or rebuild the suite`);
  }

  onStep?.('task data');
  const size = m.size;
  const data = [];
  for (const task of TASKS) data.push(await buildTaskData(task.name, { seed: m.seed, size }));
  const listing = await writeTaskDatasets(joinUri(root, m.data), { seed: m.seed, size, data });
  const dataFiles = listing
    .flatMap((w) => [w.train, w.test])
    .flatMap((d) => [d.uri, ...(d.jsonUri ? [d.jsonUri] : [])]);
  dataFiles.push(joinUri(root, m.data, 'tasks.json'));
  const files: Record<string, string> = {};
  for (const uri of dataFiles) {
    const rel = uri.slice(root.length + 1);
    const st = await storeFor(uri).stat(uri);
    files[rel] = await sha256Of(uri, st!.size);
    if (m.files[rel] !== files[rel])
      throw new SuiteError(
        `${uri}: the rebuilt task data differs from the packed suite's (is the mnist/fashion-mnist package another version?); build the suite with 'mergeflow suite build'`,
      );
  }

  onStep?.('models');
  const models = pack.models ?? 'all';
  for (const rel of modelFolders(m, models)) {
    const cfg = joinUri(root, rel, 'config.json');
    await putObject(cfg, await getObject(joinUri(src, rel, 'config.json')));
    const st = joinUri(root, rel, 'model.safetensors');
    await copyAs(joinUri(src, rel, 'model.safetensors'), st, 'F32');
    for (const uri of [cfg, st])
      files[uri.slice(root.length + 1)] = await sha256Of(uri, (await storeFor(uri).stat(uri))!.size);
  }
  for (const t of m.tasks) {
    const uri = joinUri(root, t.head);
    await putObject(uri, await getObject(joinUri(src, t.head)));
    files[t.head] = await sha256Of(uri, (await storeFor(uri).stat(uri))!.size);
  }

  const manifest = {
    ...m,
    files: Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))),
    build: {
      ...m.build,
      mergeflow: VERSION,
      unpacked: {
        from: src,
        dtype: pack.dtype,
        models,
        seconds: Math.round((Date.now() - started) / 100) / 10,
        builtWith: m.build.mergeflow,
      },
    },
  };
  await putObject(joinUri(root, SUITE_FILE), Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8'));
  return manifest;
}
