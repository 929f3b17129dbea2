/**
 * The coefficient table of a linear merge, in the run's work prefix: a safetensors object with one F64 tensor
 * `coefficients` [K, L] (row k = model k, column l = the l-th float tensor of the base, in base order) and the
 * model and tensor names, in order, as JSON in its metadata.
 */
import {
  Checkpoint,
  fromFloat64,
  isFloatDType,
  SafetensorsError,
  SafetensorsFile,
  toFloat64,
  writeTensors,
} from '../safetensors';
import { dataFreeMethod } from '../merge/registry';
import { PassState } from '../merge/method';
import { coefficientsUri, MergePlan } from './plan';

export interface CoefficientTable {
  models: string[];
  tensors: string[];
  /** K × L, row-major. */
  values: Float64Array;
}

export async function writeCoefficientTable(uri: string, table: CoefficientTable): Promise<string> {
  const [K, L] = [table.models.length, table.tensors.length];
  if (table.values.length !== K * L)
    throw new Error(`${uri}: ${table.values.length} coefficients for ${K} models × ${L} tensors`);
  await writeTensors(uri, [{ name: 'coefficients', dtype: 'F64', shape: [K, L], data: fromFloat64(table.values) }], {
    models: JSON.stringify(table.models),
    tensors: JSON.stringify(table.tensors),
  });
  return uri;
}

export async function readCoefficientTable(uri: string): Promise<CoefficientTable> {
  const f = await SafetensorsFile.open(uri);
  const names = (key: string): string[] => {
    try {
      const v = JSON.parse(f.header.metadata[key] ?? '');
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      // reported below
    }
    throw new SafetensorsError(`${uri}: metadata '${key}' must be a JSON list of names`);
  };
  const [models, tensors] = [names('models'), names('tensors')];
  const t = f.info('coefficients');
  if (t.shape.join(',') !== `${models.length},${tensors.length}`)
    throw new SafetensorsError(
      `${uri}: coefficients are [${t.shape}], the metadata names ${models.length} × ${tensors.length}`,
    );
  return { models, tensors, values: toFloat64(await f.readBytes('coefficients'), t.dtype) };
}

/** Write the linear method's table for this plan (idempotent: same key, same bytes); returns its URI. */
export async function writeCoefficients(plan: MergePlan, state: PassState): Promise<string> {
  const method = dataFreeMethod(plan.method);
  if (method.kind !== 'linear') throw new Error(`method '${plan.method}' has no coefficient table`);
  const base = await Checkpoint.open(plan.base.uri);
  const tensors = base.tensors.filter((t) => isFloatDType(t.dtype)).map((t) => t.name);
  const values = method.coefficients({
    params: method.params.parse(plan.params),
    models: plan.models.length,
    state,
    tensors,
  });
  return writeCoefficientTable(coefficientsUri(plan), { models: plan.models.map((m) => m.name), tensors, values });
}
