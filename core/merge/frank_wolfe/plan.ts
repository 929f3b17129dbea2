/**
 * Before any Frank-Wolfe iteration: read only headers and configs and refuse, in one line naming the thing and
 * what to do, whatever the iterations would trip over later: an incompatible candidate (or skip it when asked),
 * the same checkpoint twice, an empty pool prefix, a target without the data its objective needs, a head of the
 * wrong width, data of another image size. The plan carries the pool and targets as URIs and counts.
 */
import { FrankWolfeConfig, mergeConfigSchema, MergeConfig } from '../../config/schema';
import { openDataset } from '../../data/dataset';
import { clipVisionParamShapes, describeConfig } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { Checkpoint, numel } from '../../safetensors';
import { normalizeUri } from '../../store/uri';
import { splitShards } from '../../pipeline/plan';
import { resolveStart } from './params';
import { checkPool, discoverPool } from './pool';
import type { FwPlan, FwTargetRef } from './run_types';
import { startFolder } from './run_types';
import { workPrefixFor } from '../../resume/work';
import { about, bad, folderOf } from '../plan_checks';
import { openedInParallel, unwrap } from './open_parallel';

/**
 * `workPrefix` defaults to the run's own (beside the output folder, core/resume/work.ts); a resumed run that has
 * to plan again passes the first run's, so its work lands where `resume` and `gc` look for it.
 */
export async function planFrankWolfe(config: FrankWolfeConfig, runId: string, workPrefix?: string): Promise<FwPlan> {
  const parsed = mergeConfigSchema.parse(config);
  if (parsed.method !== 'frank_wolfe') bad(`planFrankWolfe: method is '${parsed.method}', not frank_wolfe`);
  const cfg = parsed;
  const p = cfg.parameters;
  const output = normalizeUri(cfg.output).replace(/\/+$/, '');
  if (output.endsWith('.safetensors'))
    bad(`output ${output}: Frank-Wolfe writes a Hugging Face folder (model, selections, report); give a folder`);

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
  const tensors = expected.map((s) => s.name);

  const listed = Array.isArray(cfg.pool)
    ? cfg.pool.map((m) => ({ name: m.name, uri: normalizeUri(m.checkpoint) }))
    : await about('pool', () => discoverPool(normalizeUri((cfg.pool as { prefix: string }).prefix), pretrained));
  const { pool, warnings } = await checkPool(base, listed, tensors, cfg.skip_incompatible);

  const [C, H, W] = [config0.numChannels, config0.imageSize, config0.imageSize];
  const checkData = (
    what: string,
    uri: string,
    opened: Awaited<ReturnType<typeof openDataset>> | undefined,
    needLabels: boolean,
  ) => {
    const ds = opened!;
    const got = ds.imageShape;
    if (got[0] !== C || got[1] !== H || got[2] !== W)
      bad(`${what} ${uri} holds ${got.join('x')} images (CxHxW) but the encoder takes ${C}x${H}x${W}; resize the data`);
    if (ds.n === 0) bad(`${what} ${uri} has no rows`);
    if (needLabels && !ds.hasLabels)
      bad(
        `${what} ${uri} has no labels; the cross_entropy objective and step_objective proxy need a labeled proxy set (its train split)`,
      );
    return ds;
  };
  // every header at once (over S3 each is a round trip); checked below in the config's order, as one by one
  const heads = await openedInParallel(cfg.targets, (t) =>
    about(`target '${t.name}' head`, () => Checkpoint.open(normalizeUri(t.head))),
  );
  const sets = await openedInParallel(
    cfg.targets.flatMap((t) => [t.proxy, t.data]),
    (uri, i) =>
      uri === undefined
        ? Promise.resolve(undefined)
        : about(`target '${cfg.targets[i >> 1].name}' ${i % 2 ? 'data' : 'proxy'}`, () =>
            openDataset(normalizeUri(uri)),
          ),
  );
  const targets: FwTargetRef[] = [];
  for (const [j, t] of cfg.targets.entries()) {
    const what = `target '${t.name}'`;
    const head = unwrap(heads[j]);
    if (!head.has('weight')) bad(`${what}: head ${head.uri} has no 'weight' [classes, dim] tensor`);
    const hw = head.info('weight').shape;
    if (hw.length !== 2 || hw[1] !== config0.projectionDim)
      bad(
        `${what}: head ${head.uri} is for ${hw[1]}-dim embeddings (weight [${hw}]) but the encoder projects to ${config0.projectionDim}; use the head trained on this encoder`,
      );
    const proxyLabels = p.objective === 'cross_entropy' || (p.variant === 'soft' && p.step_objective === 'proxy');
    const proxy = t.proxy ? checkData(`${what} proxy`, t.proxy, unwrap(sets[2 * j]), proxyLabels) : undefined;
    const data = t.data ? checkData(`${what} data`, t.data, unwrap(sets[2 * j + 1]), false) : undefined;
    targets.push({
      name: t.name,
      head: head.uri,
      proxy: proxy?.uri,
      proxyRows: proxy?.n ?? 0,
      data: data?.uri,
      dataRows: data?.n ?? 0,
      labeled: data?.hasLabels ?? false,
    });
  }

  const start = resolveStart(p);
  const work = workPrefix ?? workPrefixFor(output, runId);
  let startMerge: MergeConfig | undefined;
  if (start === 'ta' || start === 'ties')
    startMerge = mergeConfigSchema.parse({
      method: start === 'ta' ? 'task_arithmetic' : 'ties',
      base: pretrained,
      models: pool.map((m) => ({ name: m.name, checkpoint: m.uri })),
      output: startFolder({ workPrefix: work }),
      dtype: 'F32',
      shards: cfg.shards,
      parameters: start === 'ta' ? { scaling: p.scaling } : { scaling: p.scaling, keep: p.keep },
    });
  else if (start !== 'pretrained') {
    const saved = await about('parameters.start', () => Checkpoint.open(normalizeUri(start)));
    for (const n of tensors)
      if (!saved.has(n) || saved.info(n).shape.join(',') !== base.info(n).shape.join(','))
        bad(`parameters.start ${saved.uri}: tensor '${n}' is missing or of another shape than the base's`);
  }
  const infos = tensors.map((n) => base.info(n));
  return {
    runId,
    params: p,
    start: start === 'ta' || start === 'ties' || start === 'pretrained' ? start : normalizeUri(start),
    pretrained,
    pool,
    targets,
    tensors,
    shards: splitShards(infos, cfg.shards).map((s) => tensors.slice(s.first, s.first + s.count)),
    tensorCount: base.tensors.length,
    mergedElements: infos.reduce((a, t) => a + numel(t.shape), 0),
    output,
    dtype: cfg.dtype,
    workPrefix: work,
    startMerge,
    warnings,
  };
}
