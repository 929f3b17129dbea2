/** The two whole-model passes TIES needs, as shard-level steps plus their reductions (see core/merge/topk.ts). */
import { putObject, readJson } from '../store';
import { electedSignSum } from '../merge/ties';
import {
  addSparse,
  BUCKETS,
  bitsToFloat,
  histogramHigh,
  histogramLow,
  histTotal,
  locateRank,
  thresholdRank,
  toSparse,
} from '../merge/topk';
import { histUri, MergePlan } from './plan';
import { floatTensors, openInputs, Progress } from './inputs';

export interface HighBuckets {
  /** Per model: the high-16-bit bucket holding the threshold, or -1 when the model keeps everything. */
  highs: number[];
  /** Per model: rank of the threshold inside that bucket. */
  rests: number[];
}

/** Histogram pass over one shard; writes the histograms to the work prefix and returns their URI. */
export async function histogramShard(
  plan: MergePlan,
  shardIndex: number,
  level: 'high' | 'low',
  highs: readonly number[] | undefined,
  progress?: Progress,
): Promise<string> {
  const { base, models } = await openInputs(plan);
  const hists = models.map(() => new Float64Array(BUCKETS));
  const tensors = floatTensors(base, plan.shards[shardIndex]);
  for (let i = 0; i < tensors.length; i++) {
    const b = await base.readFloat32(tensors[i].name);
    for (let k = 0; k < models.length; k++) {
      if (level === 'low' && highs![k] < 0) continue;
      const m = await models[k].readFloat32(tensors[i].name);
      if (level === 'high') histogramHigh(hists[k], m, b);
      else histogramLow(hists[k], m, b, highs![k]);
    }
    await progress?.(i + 1, tensors.length, tensors[i].name);
  }
  const uri = histUri(plan, level, shardIndex);
  await putObject(uri, Buffer.from(JSON.stringify({ level, shard: shardIndex, models: hists.map(toSparse) })));
  return uri;
}

async function sumHistograms(uris: readonly string[], models: number): Promise<Float64Array[]> {
  const sums = Array.from({ length: models }, () => new Float64Array(BUCKETS));
  for (const uri of uris) {
    const doc = (await readJson(uri, (why) => new Error(`${uri}: histogram is not valid JSON (${why})`))) as {
      models: number[][];
    };
    doc.models.forEach((sp, k) => addSparse(sums[k], sp));
  }
  return sums;
}

export async function reduceHigh(plan: MergePlan, uris: readonly string[], keep: number): Promise<HighBuckets> {
  const sums = await sumHistograms(uris, plan.models.length);
  const highs: number[] = [];
  const rests: number[] = [];
  for (const h of sums) {
    const rank = thresholdRank(histTotal(h), keep);
    if (rank === 0) {
      highs.push(-1);
      rests.push(0);
    } else {
      const { bucket, rest } = locateRank(h, rank);
      highs.push(bucket);
      rests.push(rest);
    }
  }
  return { highs, rests };
}

/** Exact per-model thresholds (float32 values; 0 keeps everything). */
export async function reduceLow(plan: MergePlan, uris: readonly string[], high: HighBuckets): Promise<number[]> {
  const sums = await sumHistograms(uris, plan.models.length);
  return sums.map((h, k) => {
    if (high.highs[k] < 0) return 0;
    const { bucket } = locateRank(h, high.rests[k]);
    return bitsToFloat(((high.highs[k] << 16) | bucket) >>> 0);
  });
}

/** Σ over the shard's entries of the elected sign: summed over shards, its sign is the majority sign. */
export async function signShard(
  plan: MergePlan,
  shardIndex: number,
  thresholds: readonly number[],
  progress?: Progress,
): Promise<number> {
  const { base, models } = await openInputs(plan);
  const tensors = floatTensors(base, plan.shards[shardIndex]);
  let s = 0;
  for (let i = 0; i < tensors.length; i++) {
    const b = await base.readFloat32(tensors[i].name);
    const ms = await Promise.all(models.map((m) => m.readFloat32(tensors[i].name)));
    s += electedSignSum(b, ms, thresholds);
    await progress?.(i + 1, tensors.length, tensors[i].name);
  }
  return s;
}
