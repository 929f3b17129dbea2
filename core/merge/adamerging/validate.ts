/**
 * Before any AdaMerging step: read only headers and configs (θ0's and every task model's config.json and
 * safetensors header, each head's header, each dataset's header) and refuse, in one line naming the thing and
 * what to do, anything the steps would trip over later: models with other tensor sets or configs than θ0, a head
 * whose width is not the encoder's projection, data of another image size, empty data.
 */
import { workPrefixFor } from '../../resume/work';
import { AdamergingConfig, checkpointOf, mergeConfigSchema } from '../../config/schema';
import { openDataset } from '../../data/dataset';
import { clipVisionParamShapes, describeConfig } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { Checkpoint, numel } from '../../safetensors';
import { normalizeUri } from '../../store/uri';
import { lambdaSize, makeLayout } from './coefficients';
import type { AdaPlan, AdaTaskRef } from './run_types';
import { about, bad, folderOf } from '../plan_checks';

export async function planAdaMerging(config: AdamergingConfig, runId: string): Promise<AdaPlan> {
  // `resolved_latest` is the run's note of the checkpoints it resolved, not part of the config schema
  const { resolved_latest: _resolved, ...doc } = config as AdamergingConfig & { resolved_latest?: unknown };
  const parsed = mergeConfigSchema.parse(doc);
  if (parsed.method !== 'adamerging') bad(`planAdaMerging: method is '${parsed.method}', not adamerging`);
  const cfg = parsed;
  const output = normalizeUri(cfg.output).replace(/\/+$/, '');
  if (output.endsWith('.safetensors'))
    bad(`output ${output}: AdaMerging writes a Hugging Face folder (model, λ, losses, report); give a folder`);

  const pretrained = folderOf(cfg.base);
  const config0 = await about('base', () => readClipVisionConfig(pretrained));
  const base = await about('base', () => Checkpoint.open(pretrained));
  const expected = clipVisionParamShapes(config0);
  for (const { name, shape } of expected) {
    if (!base.has(name))
      bad(`base ${base.uri}: no tensor '${name}' that its config.json (${describeConfig(config0)}) implies`);
    if (base.info(name).shape.join(',') !== shape.join(','))
      bad(`base ${base.uri}: tensor '${name}' is [${base.info(name).shape}], config.json implies [${shape}]`);
  }
  const baseNames = new Set(base.tensors.map((t) => t.name));
  const [C, H, W] = [config0.numChannels, config0.imageSize, config0.imageSize];

  const tasks: AdaTaskRef[] = [];
  for (const t of cfg.tasks) {
    const what = `task '${t.name}'`;
    const folder = folderOf(checkpointOf({ name: t.name, checkpoint: t.model }));
    const c = await about(`${what} model`, () => readClipVisionConfig(folder));
    if (JSON.stringify(c) !== JSON.stringify(config0))
      bad(
        `${what}: model ${folder} is ${describeConfig(c)} but the base is ${describeConfig(config0)}; merge models of one architecture`,
      );
    const ck = await about(`${what} model`, () => Checkpoint.open(folder));
    for (const n of baseNames) {
      if (!ck.has(n))
        bad(
          `${what}: model ${ck.uri} has no tensor '${n}' that the base has; the models must share the base's tensor set`,
        );
      if (ck.info(n).shape.join(',') !== base.info(n).shape.join(','))
        bad(`${what}: model tensor '${n}' is [${ck.info(n).shape}], the base's is [${base.info(n).shape}]`);
    }
    const extra = ck.tensors.find((x) => !baseNames.has(x.name));
    if (extra)
      bad(
        `${what}: model ${ck.uri} has tensor '${extra.name}' that the base lacks; the models must share the base's tensor set`,
      );

    const head = await about(`${what} head`, () => Checkpoint.open(normalizeUri(t.head)));
    if (!head.has('weight')) bad(`${what}: head ${head.uri} has no 'weight' [classes, dim] tensor`);
    const hw = head.info('weight').shape;
    if (hw.length !== 2 || hw[1] !== config0.projectionDim)
      bad(
        `${what}: head ${head.uri} is for ${hw[1]}-dim embeddings (weight [${hw}]) but the encoder projects to ${config0.projectionDim}; use the head trained on this encoder`,
      );

    const data = normalizeUri(t.data);
    const ds = await about(`${what} data`, () => openDataset(data));
    const got = ds.imageShape;
    if (got[0] !== C || got[1] !== H || got[2] !== W)
      bad(
        `${what}: data ${data} holds ${got.join('x')} images (CxHxW) but the encoder takes ${C}x${H}x${W}; resize the data`,
      );
    if (ds.n === 0) bad(`${what}: data ${data} has no rows; AdaMerging needs unlabeled inputs of every task`);
    tasks.push({ name: t.name, model: folder, head: head.uri, data, rows: ds.n, labeled: ds.hasLabels });
  }

  const layout = makeLayout(
    cfg.parameters.granularity,
    tasks.map((t) => t.name),
    expected.map((s) => s.name),
  );
  return {
    runId,
    params: cfg.parameters,
    pretrained,
    baseFile: base.files.length === 1 ? base.files[0].uri : base.uri,
    tasks,
    tensorCount: base.tensors.length,
    lambdaSize: lambdaSize(layout),
    mergedElements: expected.reduce((a, s) => a + numel(s.shape), 0),
    output,
    dtype: cfg.dtype,
    workPrefix: workPrefixFor(output, runId),
    warnings: [],
  };
}

/** The merged tensors' names, in λ's layout order (the encoder's parameter order). */
export function layoutTensors(config: Parameters<typeof clipVisionParamShapes>[0]): string[] {
  return clipVisionParamShapes(config).map((s) => s.name);
}
