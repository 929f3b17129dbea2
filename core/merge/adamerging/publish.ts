/**
 * AdaMerging's outputs beside the merged model in the output folder: lambda.json and lambda.safetensors (raw and
 * as used), losses.json (loss per task per step), optimizer_state.safetensors (the final Adam state),
 * accuracy.json (when the tasks' data carry labels), report.png, and last the manifest. Then the work prefix is
 * cleared. Every object is written whole (write, then commit), so a retry rewrites the same bytes.
 */
import { fromFloat64, writeTensors } from '../../safetensors';
import { Committed, joinUri, putObject, readJson, storeFor } from '../../store';
import { clipVisionParamShapes } from '../../models/clip_vit';
import { readClipVisionConfig } from '../../models/clip_vit_load';
import { loadAdamState } from '../../optim/state';
import { clearWork, FileHash, hashCheckpoint } from '../../pipeline/publish';
import { sha256Of } from '../../store';
import { VERSION } from '../../version';
import { clampLambda } from './coefficients';
import { adaChartPng } from './report_chart';
import type { AdaPlan, LossRecord } from './run_types';

export interface AdaPublishInput {
  plan: AdaPlan;
  stateUri: string;
  lossUris: string[];
  output: Committed;
  files: string[];
  accuracy?: { average: number; tasks: Record<string, number> };
  config: unknown;
}

export interface AdaPublished {
  manifestUri: string;
  lambdaJson: string;
  lambdaSafetensors: string;
  losses: string;
  report: string;
  stateUri: string;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');

async function fileHash(uri: string): Promise<FileHash> {
  const st = await storeFor(uri).stat(uri);
  if (!st) throw new Error(`${uri}: not found`);
  return { uri, bytes: st.size, sha256: await sha256Of(uri, st.size) };
}

export async function publishAdaMerging(p: AdaPublishInput): Promise<AdaPublished> {
  const { plan } = p;
  const at = (f: string) => joinUri(plan.output, f);
  const { state } = await loadAdamState(p.stateUri);
  const config = await readClipVisionConfig(plan.pretrained);
  const tensors = clipVisionParamShapes(config).map((s) => s.name);
  const tasks = plan.tasks.map((t) => t.name);
  const K = tasks.length;
  const layerWise = plan.params.granularity === 'layer';
  const lam32 = Float32Array.from(state.params);
  const used = plan.params.clamp ? clampLambda(lam32) : lam32;
  const rows = (v: ArrayLike<number>) =>
    layerWise ? tasks.map((_, k) => Array.from(v).slice(k * tensors.length, (k + 1) * tensors.length)) : Array.from(v);

  const records: LossRecord[] = [];
  for (const u of p.lossUris)
    records.push(...((await readJson(u, (why) => new Error(`${u}: ${why}`))) as LossRecord[]));

  const lambdaJson = at('lambda.json');
  await putObject(
    lambdaJson,
    json({
      granularity: plan.params.granularity,
      variant: plan.params.variant,
      clamp: plan.params.clamp,
      steps: state.step,
      tasks,
      ...(layerWise ? { tensors } : {}),
      lambda: rows(state.params),
      used: rows(used),
    }),
  );
  const shape = layerWise ? [K, tensors.length] : [K];
  const lambdaSafetensors = at('lambda.safetensors');
  await writeTensors(
    lambdaSafetensors,
    [
      { name: 'lambda', dtype: 'F64', shape, data: fromFloat64(state.params) },
      { name: 'lambda_used', dtype: 'F64', shape, data: fromFloat64(Float64Array.from(used)) },
    ],
    {
      tasks: JSON.stringify(tasks),
      ...(layerWise ? { tensors: JSON.stringify(tensors) } : {}),
      step: String(state.step),
    },
  );
  const losses = at('losses.json');
  await putObject(losses, json({ tasks, steps: records }));
  const stateUri = at('optimizer_state.safetensors');
  await putObject(stateUri, await storeFor(p.stateUri).readAll(p.stateUri));
  if (p.accuracy) await putObject(at('accuracy.json'), json(p.accuracy));
  const report = at('report.png');
  await putObject(
    report,
    await adaChartPng({
      title: `AdaMerging (${plan.params.granularity}-wise${plan.params.variant === 'ties' ? ', ++' : ''}), ${plan.runId}`,
      tasks,
      records,
      granularity: plan.params.granularity,
      lambda: Array.from(used),
      tensors: tensors.length,
    }),
  );

  const inputs = {
    base: await hashCheckpoint(plan.pretrained),
    models: Object.fromEntries(
      await Promise.all(plan.tasks.map(async (t) => [t.name, await hashCheckpoint(t.model)] as const)),
    ),
    heads: Object.fromEntries(
      await Promise.all(plan.tasks.map(async (t) => [t.name, await fileHash(t.head)] as const)),
    ),
    data: Object.fromEntries(await Promise.all(plan.tasks.map(async (t) => [t.name, await fileHash(t.data)] as const))),
  };
  const files = [...p.files, 'lambda.json', 'lambda.safetensors', 'losses.json', 'optimizer_state.safetensors'];
  if (p.accuracy) files.push('accuracy.json');
  files.push('report.png');
  const manifestUri = at('mergeflow.manifest.json');
  await putObject(
    manifestUri,
    json({
      mergeflow: VERSION,
      runId: plan.runId,
      method: 'adamerging',
      parameters: plan.params,
      dtype: plan.dtype,
      inputs,
      output: { uri: p.output.uri, bytes: p.output.bytes, sha256: p.output.sha256 },
      files,
      accuracy: p.accuracy,
      config: p.config,
      createdAt: new Date().toISOString(),
    }),
  );
  await clearWork(plan);
  return { manifestUri, lambdaJson, lambdaSafetensors, losses, report, stateUri };
}
