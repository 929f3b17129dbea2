/**
 * `checkpoint: { latest_under: PREFIX }`: the newest checkpoint under a prefix, so a nightly run merges the latest
 * fine-tunes. A checkpoint is a `.safetensors` object, or a folder holding `model.safetensors` or a sharded
 * `model-0000N-of-0000M.safetensors` set; its time is the newest modification time of its weight files. Ties go
 * to the later name. Work prefixes (`.mergeflow-work/`) are never candidates.
 */
import type { AdamergingConfig, DataFreeConfig } from '../config/schema';
import { ADAMERGING } from '../merge/adamerging/params';
import { storeFor } from '../store';
import { NotFoundError } from '../store/types';
import { WORK_FOLDER } from '../resume/work';

export interface ResolvedLatest {
  model: string;
  under: string;
  checkpoint: string;
  modified: string;
}

/** The checkpoint a weight file belongs to: its folder for model*.safetensors, the file itself otherwise. */
function checkpointOfFile(uri: string): string {
  const name = uri.slice(uri.lastIndexOf('/') + 1);
  return /^model(-\d+-of-\d+)?\.safetensors$/.test(name) ? uri.slice(0, uri.lastIndexOf('/')) : uri;
}

export async function newestCheckpoint(prefix: string): Promise<{ checkpoint: string; modified: Date }> {
  const under = prefix.endsWith('/') ? prefix : prefix + '/';
  const store = storeFor(under);
  const newest = new Map<string, number>();
  for (const uri of await store.list(under)) {
    if (!uri.endsWith('.safetensors') || uri.includes(`/${WORK_FOLDER}/`)) continue;
    const st = await store.stat(uri);
    if (!st) continue;
    const ck = checkpointOfFile(uri);
    const t = st.modified?.getTime() ?? 0;
    newest.set(ck, Math.max(newest.get(ck) ?? 0, t));
  }
  let best: { checkpoint: string; t: number } | undefined;
  for (const [checkpoint, t] of newest)
    if (!best || t > best.t || (t === best.t && checkpoint > best.checkpoint)) best = { checkpoint, t };
  if (!best) throw new NotFoundError(`latest_under ${under}: no .safetensors checkpoint under this prefix`);
  return { checkpoint: best.checkpoint, modified: new Date(best.t) };
}

/** The config with every `latest_under` replaced by the checkpoint found now, and what was picked. */
export async function resolveLatest<C extends DataFreeConfig | AdamergingConfig>(
  config: C,
): Promise<{ config: C; resolved: ResolvedLatest[] }> {
  const resolved: ResolvedLatest[] = [];
  const pick = async (name: string, ref: string | { latest_under: string }): Promise<string> => {
    if (typeof ref === 'string') return ref;
    const { checkpoint, modified } = await newestCheckpoint(ref.latest_under);
    resolved.push({ model: name, under: ref.latest_under, checkpoint, modified: modified.toISOString() });
    return checkpoint;
  };
  if (config.method === ADAMERGING) {
    const c = config as AdamergingConfig;
    const tasks = [];
    for (const t of c.tasks) tasks.push({ ...t, model: await pick(t.name, t.model) });
    return { config: { ...config, tasks }, resolved };
  }
  const models = [];
  for (const m of (config as DataFreeConfig).models)
    models.push({ ...m, checkpoint: await pick(m.name, m.checkpoint) });
  return { config: { ...config, models }, resolved };
}
