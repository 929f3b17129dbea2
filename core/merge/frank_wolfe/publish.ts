/**
 * Frank-Wolfe's outputs in the output folder: model.safetensors (θT for the merged tensors, in the base's dtypes
 * or the one asked; the base's other tensors copied) with the base's config.json, then selections.json (the
 * picks of every iteration, per tensor for layer-wise), objective.json, objective.png, selection.png (the
 * heatmap), accuracy.json when the targets' data carry labels, and last the manifest. Then the work prefix is
 * cleared. Every object is written whole, so a retry rewrites the same bytes.
 */
import { Checkpoint, DType, fromFloat32, isFloatDType, writeSafetensors } from '../../safetensors';
import { Committed, joinUri, putObject, storeFor } from '../../store';
import { clearWork, hashCheckpoint } from '../../pipeline/publish';
import { VERSION } from '../../version';
import { objectivePng, SelectionRow, selectionPng } from './report_chart';
import type { FwIterationRecord, FwPlan } from './run_types';
import { START_CANDIDATE } from './run_types';

const SIDE_FILES = ['config.json', 'preprocessor_config.json'];
const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');

/** θT into `<output>/model.safetensors` beside the base's side files. */
export async function writeMergedModel(plan: FwPlan, theta: string): Promise<{ output: Committed; files: string[] }> {
  const base = await Checkpoint.open(plan.pretrained);
  const th = await Checkpoint.open(theta);
  const merged = new Set(plan.tensors);
  const outDType = (d: DType): DType => (plan.dtype === 'base' || !isFloatDType(d) ? d : plan.dtype);
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outDType(t.dtype), shape: t.shape }));
  const output = await writeSafetensors(
    joinUri(plan.output, 'model.safetensors'),
    specs,
    async (t) => (merged.has(t.name) ? fromFloat32(await th.readFloat32(t.name), t.dtype) : base.readBytes(t.name)),
    { format: 'pt', mergeflow_method: 'frank_wolfe' },
  );
  const files = ['model.safetensors'];
  for (const f of SIDE_FILES) {
    const src = joinUri(plan.pretrained, f);
    if (!(await storeFor(src).stat(src))) continue;
    await putObject(joinUri(plan.output, f), await storeFor(src).readAll(src));
    files.push(f);
  }
  return { output, files };
}

export interface FwPublishInput {
  plan: FwPlan;
  records: FwIterationRecord[];
  output: Committed;
  files: string[];
  accuracy?: { average: number; tasks: Record<string, number> };
  config: unknown;
}

export interface FwPublished {
  manifestUri: string;
  selections: string;
  objectivePng: string;
  selectionPng: string;
}

/** The selection heatmap's rows: one per iteration (FW-Soft: one per pick). */
export function selectionRows(plan: FwPlan, records: readonly FwIterationRecord[]): SelectionRow[] {
  const P = plan.tensors.length;
  return records.flatMap((r) =>
    r.picks.map((pk) => ({
      label: plan.params.variant === 'soft' ? `${r.iteration}: ${pk.target}` : `${r.iteration}`,
      perTensor: pk.perTensor ?? Array<string | null>(P).fill(pk.candidate ?? null),
    })),
  );
}

export async function publishFrankWolfe(p: FwPublishInput): Promise<FwPublished> {
  const { plan, records } = p;
  const at = (f: string) => joinUri(plan.output, f);
  const targets = plan.targets.map((t) => t.name);
  const candidates = [...plan.pool.map((c) => c.name), START_CANDIDATE];
  const selections = at('selections.json');
  const name = `FW-${plan.params.variant === 'hard' ? 'Hard' : 'Soft'} (${plan.params.oracle}-wise), ${plan.runId}`;
  const objPng = at('objective.png');
  const selPng = at('selection.png');
  // the report files and the inputs' digests are independent: written and read at once (the manifest, the
  // commit point, goes after all of them)
  const [inputs] = await Promise.all([
    (async () => ({
      base: await hashCheckpoint(plan.pretrained),
      pool: Object.fromEntries(await Promise.all(plan.pool.map(async (c) => [c.name, await hashCheckpoint(c.uri)]))),
    }))(),
    putObject(
      selections,
      json({
        variant: plan.params.variant,
        oracle: plan.params.oracle,
        start: plan.start,
        pool: plan.pool,
        targets,
        tensors: plan.tensors,
        iterations: records,
      }),
    ),
    putObject(
      at('objective.json'),
      json({ targets, objective: records.map((r) => r.objective), perTarget: records.map((r) => r.lossPerTarget) }),
    ),
    objectivePng(`${name}: objective f at θt`, targets, records).then((png) => putObject(objPng, png)),
    selectionPng(`${name}: selections`, candidates, selectionRows(plan, records)).then((png) => putObject(selPng, png)),
    p.accuracy ? putObject(at('accuracy.json'), json(p.accuracy)) : undefined,
  ]);
  const files = [...p.files, 'selections.json', 'objective.json', 'objective.png', 'selection.png'];
  if (p.accuracy) files.push('accuracy.json');
  const manifestUri = at('mergeflow.manifest.json');
  await putObject(
    manifestUri,
    json({
      mergeflow: VERSION,
      runId: plan.runId,
      method: 'frank_wolfe',
      parameters: plan.params,
      start: plan.start,
      dtype: plan.dtype,
      inputs,
      output: { uri: p.output.uri, bytes: p.output.bytes, sha256: p.output.sha256 },
      files,
      accuracy: p.accuracy,
      warnings: plan.warnings,
      config: p.config,
      createdAt: new Date().toISOString(),
    }),
  );
  await clearWork(plan);
  return { manifestUri, selections, objectivePng: objPng, selectionPng: selPng };
}
