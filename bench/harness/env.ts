/** What the benches that use the stack share: its settings, a unique S3 prefix, a reachability check. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { applyStackEnv } from '../../infra/stack';
import { storeFor } from '../../core/store';
import { temporalTarget } from '../../workers/temporal_config';

export function useStack(): void {
  applyStackEnv();
  // mergeflow pins its AWS SDK (as cli/main.ts does, silence the notice about future Node versions)
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

export function benchPrefix(label: string): string {
  const tag = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  return `s3://${process.env.MERGEFLOW_BUCKET ?? 'mergeflow'}/bench/${label}-${tag}`;
}

/** Why the S3 store cannot be used, or undefined when it answers. */
export async function s3Unavailable(): Promise<string | undefined> {
  useStack();
  try {
    await storeFor(benchPrefix('probe')).stat(benchPrefix('probe'));
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/** Why the S3 store or the Temporal server cannot be used, or undefined when both answer. */
export async function stackUnavailable(): Promise<string | undefined> {
  const s3 = await s3Unavailable();
  if (s3) return s3;
  const { address, tls, apiKey } = temporalTarget();
  try {
    const c = await Connection.connect({ address, tls, apiKey, connectTimeout: 5000 });
    await c.close();
    return undefined;
  } catch (e) {
    return `cannot reach Temporal at ${address} (${(e as Error).message.split('\n')[0]}); start it with 'mergeflow stack up'`;
  }
}

/** Median of a few numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Why a bench whose baseline is PyTorch cannot run here (python or torch missing), or undefined. */
export function torchUnavailable(python: string): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch, safetensors'], { encoding: 'utf8' });
  if (r.error) return `${python} not found (MERGEFLOW_PYTHON names another)`;
  if (r.status !== 0)
    return `PyTorch is not installed for ${python} (pip install torch safetensors); it is the baseline`;
  return undefined;
}
