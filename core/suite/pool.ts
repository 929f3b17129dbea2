/**
 * A small pool of worker threads running suite training jobs. The wasm and cpu TensorFlow.js backends are
 * single-threaded, so one worker per core trains that many models at once. A job's result does not depend
 * on which worker runs it or when. `size: 0` runs jobs in this thread instead (same results).
 *
 * Pretraining is one long job; `pretrainSharded` splits each of its steps into a fixed number of shards
 * computed by different workers (data parallel), averaged here in shard order and applied by every
 * replica alike. The result depends on the shard count only, not on the number of workers.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BackendChoice, initBackend } from '../tensor/backend';
import { Job, JobOutput, PretrainJob, PretrainOutput, runJob, runPretrain, StepReport } from './jobs';
import { averageShardGrads } from './train';

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onStep?: StepReport;
}

interface Reply {
  id: number;
  type: 'progress' | 'done' | 'error';
  step?: number;
  total?: number;
  loss?: number;
  out?: unknown;
  backend?: string;
  message?: string;
}

export class JobPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { job: Job; w: Waiter }[] = [];
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;
  private failed: Error | undefined;
  private closing = false;
  private local: Promise<string> | undefined;
  /** The backend the jobs ran on (reported by the workers). */
  backend: string | undefined;

  constructor(
    readonly size: number,
    private readonly preferred: BackendChoice | undefined,
  ) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(path.join(__dirname, 'train_worker.js'), { workerData: { backend: preferred } });
      w.on('message', (m: Reply) => this.onMessage(w, m));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0 && !this.closing) this.fail(new Error(`a training worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** Run a job on the next idle worker. */
  run(job: Job, onStep?: StepReport): Promise<JobOutput> {
    if (this.size === 0) return this.runLocal(() => runJob(job, onStep));
    return new Promise((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.queue.push({ job, w: { resolve: resolve as (v: unknown) => void, reject, onStep } });
      this.pump();
    });
  }

  /**
   * Pretraining with every step split into `shards` data-parallel shards, spread over the workers (all of
   * them: call it while the pool is idle).
   */
  async pretrainSharded(job: PretrainJob, shards: number, onStep?: StepReport): Promise<PretrainOutput> {
    if (job.recipe.batchSize % shards !== 0)
      throw new Error(`pretrain batch ${job.recipe.batchSize} is not divisible into ${shards} shards`);
    if (this.size === 0) return this.runLocal(() => runPretrain(job, onStep, shards));
    if (this.idle.length !== this.size) throw new Error('pretrainSharded needs an idle pool');
    const used = this.workers.slice(0, Math.min(this.size, shards));
    const owned = used.map((_, wi) =>
      Array.from({ length: shards }, (_, s) => s).filter((s) => s % used.length === wi),
    );
    this.idle.length = 0; // reserve every worker
    try {
      await Promise.all(used.map((w) => this.request(w, { type: 'dp-init', job })));
      const losses: number[] = [];
      for (let t = 0; t < job.recipe.steps; t++) {
        const replies = (await Promise.all(
          used.map((w, wi) => this.request(w, { type: 'dp-grads', t, shards: owned[wi], count: shards })),
        )) as { shard: number; loss: number; grads: Float32Array[] }[][];
        const parts = replies.flat().sort((a, b) => a.shard - b.shard);
        const loss = parts.reduce((a, p) => a + p.loss, 0) / shards;
        const grads = averageShardGrads(parts.map((p) => p.grads));
        for (const w of used) w.postMessage({ id: this.nextId++, type: 'dp-apply', t, grads, loss });
        losses.push(loss);
        onStep?.(t + 1, job.recipe.steps, loss);
      }
      const outs = (await Promise.all(used.map((w, wi) => this.request(w, { type: 'dp-finish', keep: wi === 0 })))) as (
        { params: PretrainOutput['params']; lossStart: number; lossEnd: number } | undefined
      )[];
      const r = outs[0]!;
      return { params: r.params, lossStart: r.lossStart, lossEnd: r.lossEnd };
    } finally {
      this.idle.push(...this.workers);
      this.pump();
    }
  }

  private async runLocal<T>(fn: () => T): Promise<T> {
    this.local ??= initBackend(this.preferred, () => undefined);
    this.backend = await this.local;
    return fn();
  }

  private request(w: Worker, msg: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, ...msg });
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const { job, w: waiter } = this.queue.shift()!;
      const id = this.nextId++;
      this.waiting.set(id, {
        ...waiter,
        resolve: (v) => {
          this.idle.push(w);
          waiter.resolve(v);
          this.pump();
        },
        reject: (e) => {
          this.idle.push(w);
          waiter.reject(e);
          this.pump();
        },
      });
      w.postMessage({ id, type: 'job', job });
    }
  }

  private onMessage(_w: Worker, m: Reply): void {
    const waiter = this.waiting.get(m.id);
    if (!waiter) return;
    if (m.type === 'progress') {
      waiter.onStep?.(m.step!, m.total!, m.loss!);
      return;
    }
    this.waiting.delete(m.id);
    if (m.backend) this.backend ??= m.backend;
    if (m.type === 'done') waiter.resolve(m.out);
    else waiter.reject(new Error(m.message));
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    for (const { w } of this.queue) w.reject(e);
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
