/**
 * AdaMerging's final merge, through the one linear kernel: the learned λ (clamped to [0, 1] when clamping is
 * on, at the float32 values the steps used) becomes a K × L coefficient table over θ0's float tensors (tensors
 * outside the encoder keep θ0: coefficient 0), written to the work prefix; then θ0 + Σk c_k^l τk^l is streamed
 * tensor by tensor into the output folder's model.safetensors, beside θ0's config.json.
 */
import { Checkpoint, fromFloat32, isFloatDType, SafetensorsFile, writeSafetensors, DType } from '../../safetensors';
import { Committed, joinUri, putObject, storeFor } from '../../store';
import { clipVisionParamShapes } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { loadAdamState } from '../../optim/state';
import { readCoefficientTable, writeCoefficientTable } from '../../pipeline/coefficients';
import { linearMergeTaskVectors, linearMergeTensor, tableColumn } from '../coefficients';
import { clampLambda, lambdaIndex, makeLayout } from './coefficients';
import type { AdaPlan } from './run_types';

const SIDE_FILES = ['config.json', 'preprocessor_config.json'];

export function coefficientsKey(plan: Pick<AdaPlan, 'workPrefix'>): string {
  return `${plan.workPrefix}coefficients.safetensors`;
}

/** The table from the state at `stateUri`; returns its URI (same key, same bytes for the same state). */
export async function writeLambdaTable(plan: AdaPlan, stateUri: string): Promise<string> {
  const { state } = await loadAdamState(stateUri);
  const config = await readClipVisionConfig(plan.pretrained);
  const names = clipVisionParamShapes(config).map((s) => s.name);
  const layout = makeLayout(
    plan.params.granularity,
    plan.tasks.map((t) => t.name),
    names,
  );
  const lam32 = Float32Array.from(state.params);
  const used = plan.params.clamp ? clampLambda(lam32) : lam32;
  const base = await Checkpoint.open(plan.pretrained);
  const tensors = base.tensors.filter((t) => isFloatDType(t.dtype)).map((t) => t.name);
  const column = new Map(names.map((n, l) => [n, l]));
  const K = plan.tasks.length;
  const values = new Float64Array(K * tensors.length);
  tensors.forEach((n, j) => {
    const l = column.get(n);
    if (l === undefined) return;
    for (let k = 0; k < K; k++) values[k * tensors.length + j] = used[lambdaIndex(layout, k, l)];
  });
  return writeCoefficientTable(coefficientsKey(plan), { models: layout.tasks.slice(), tensors, values });
}

/** Merge with the table into `<output>/model.safetensors` and copy θ0's side files. */
export async function mergeWithTable(plan: AdaPlan, tableUri: string): Promise<{ output: Committed; files: string[] }> {
  const table = await readCoefficientTable(tableUri);
  const K = table.models.length;
  const L = table.tensors.length;
  const col = new Map(table.tensors.map((n, l) => [n, l]));
  const base = await Checkpoint.open(plan.pretrained);
  const ties = plan.params.variant === 'ties';
  const inputs = ties
    ? await Promise.all((plan.taskVectors ?? []).map((u) => SafetensorsFile.open(u)))
    : await Promise.all(plan.tasks.map((t) => Checkpoint.open(t.model)));
  if (inputs.length !== K) throw new Error(`${tableUri}: ${K} rows for ${inputs.length} inputs`);
  const outDType = (d: DType): DType => (plan.dtype === 'base' || !isFloatDType(d) ? d : plan.dtype);
  const uri = joinUri(plan.output, 'model.safetensors');
  const specs = base.tensors.map((t) => ({ name: t.name, dtype: outDType(t.dtype), shape: t.shape }));
  const output = await writeSafetensors(
    uri,
    specs,
    async (t) => {
      const info = base.info(t.name);
      if (!isFloatDType(info.dtype)) return base.readBytes(t.name);
      const l = col.get(t.name);
      if (l === undefined) throw new Error(`${tableUri}: no coefficients for tensor '${t.name}'`);
      const b = await base.readFloat32(t.name);
      const coefs = tableColumn(table.values, K, L, l);
      const merged =
        ties && inputs[0].has(t.name)
          ? linearMergeTaskVectors(b, await Promise.all(inputs.map((f) => f.readFloat32(t.name))), coefs)
          : ties
            ? b
            : linearMergeTensor(b, await Promise.all(inputs.map((f) => f.readFloat32(t.name))), coefs);
      return fromFloat32(merged, t.dtype);
    },
    { format: 'pt', mergeflow_method: 'adamerging' },
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
