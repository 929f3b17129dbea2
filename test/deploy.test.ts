/**
 * The deploy files in infra/deploy, parsed and cross-checked (Docker does not run here): the Compose file
 * (Temporal on PostgreSQL, an S3 server, CPU and GPU workers) and the Kubernetes manifests for GPU workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { adamergingParams } from '../core/merge/adamerging/params';
import { AUTO_FIRST_EPOCH, autoEpochSteps } from '../core/merge/adamerging/epoch_size';
import { parseAddress } from '../workers/metrics';
import { shutdownGraceMs } from '../workers/worker';

const DEPLOY = path.resolve(__dirname, '..', '..', 'infra', 'deploy');
const K8S = path.join(DEPLOY, 'k8s');
/** A generous bound on one optimiser step on a GPU worker (ViT-B/32 takes about 0.7 s, README). */
const SECONDS_PER_STEP = 3;
/** Orchestration outside the steps per epoch on a GPU worker (scheduling, start state, checkpoints; generous). */
const EPOCH_OVERHEAD_SECONDS = 2;
/** One epoch as the default (`steps_per_epoch: auto`) sizes it from such timings, or the fixed default if any. */
const EPOCH_SECONDS = ((): number => {
  const n = adamergingParams.parse({}).steps_per_epoch;
  if (n !== 'auto') return n * SECONDS_PER_STEP;
  const steps = AUTO_FIRST_EPOCH;
  const next = autoEpochSteps({
    steps,
    epochs: 1,
    epochWall: steps * SECONDS_PER_STEP + EPOCH_OVERHEAD_SECONDS,
    stepSeconds: steps * SECONDS_PER_STEP,
    checkpointSeconds: 0,
    loadSeconds: 0,
  });
  return next * SECONDS_PER_STEP + EPOCH_OVERHEAD_SECONDS;
})();

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Compose durations such as 90s, 11m, 1m30s, in seconds. */
function composeSeconds(d: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let m: RegExpExecArray | null;
  let matched = '';
  while ((m = re.exec(d))) {
    total += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 0.001 }[m[2] as 'h' | 'm' | 's' | 'ms'];
    matched += m[0];
  }
  assert.equal(matched, d, `a Compose duration: ${d}`);
  return total;
}

function envOf(svc: Obj): Record<string, string> {
  const e = svc.environment ?? {};
  return Array.isArray(e) ? Object.fromEntries(e.map((kv: string) => kv.split(/=(.*)/s).slice(0, 2))) : e;
}

test('compose: Temporal on PostgreSQL, S3, CPU and GPU workers; every reference resolves', () => {
  const text = fs.readFileSync(path.join(DEPLOY, 'docker-compose.yml'), 'utf8');
  const doc = parse(text, { merge: true }) as Obj;
  const services = doc.services as Record<string, Obj>;
  for (const name of ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'minio', 'worker', 'worker-gpu'])
    assert.ok(services[name], `service ${name}`);

  // Temporal keeps its state in the PostgreSQL service
  const temporal = envOf(services.temporal);
  assert.match(temporal.DB, /^postgres/);
  assert.ok(services[temporal.POSTGRES_SEEDS]?.image?.startsWith('postgres'), 'POSTGRES_SEEDS names the database');
  assert.ok(services.temporal.depends_on.postgresql, 'Temporal waits for PostgreSQL');
  assert.equal(envOf(services['temporal-ui']).TEMPORAL_ADDRESS, 'temporal:7233');
  assert.match(services['temporal-setup'].command.join(' '), /MergeStatus MergeMethod/);

  for (const [name, svc] of Object.entries(services)) {
    // depends_on: defined services, and conditions the target can meet
    for (const [dep, cond] of Object.entries((svc.depends_on ?? {}) as Record<string, Obj>)) {
      const target = services[dep];
      assert.ok(target, `${name} depends on a defined service (${dep})`);
      if (cond.condition === 'service_healthy') assert.ok(target.healthcheck, `${dep} has a healthcheck`);
      if (cond.condition === 'service_completed_successfully') assert.equal(target.restart, 'no', `${dep} runs once`);
    }
    // named volumes are declared
    for (const v of (svc.volumes ?? []) as string[]) {
      const source = v.split(':')[0];
      if (!/^[./~]/.test(source)) assert.ok(source in (doc.volumes ?? {}), `${name}: volume ${source} is declared`);
    }
    // builds: the context, the Dockerfile and its target stage exist
    if (svc.build) {
      const context = path.resolve(DEPLOY, svc.build.context);
      const dockerfile = path.join(context, svc.build.dockerfile ?? 'Dockerfile');
      assert.ok(fs.existsSync(dockerfile), `${name}: ${dockerfile} exists`);
      if (svc.build.target) {
        const stages = [...fs.readFileSync(dockerfile, 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map(
          (m) => m[1],
        );
        assert.ok(stages.includes(svc.build.target), `${name}: stage ${svc.build.target} in ${stages}`);
      }
    }
    // ports are published on loopback only
    for (const p of (svc.ports ?? []) as string[]) assert.match(p, /^127\.0\.0\.1:/, `${name}: ${p} on loopback`);
    // the servers a service is pointed at are services of this file
    const env = envOf(svc);
    if (env.TEMPORAL_ADDRESS) assert.ok(services[env.TEMPORAL_ADDRESS.split(':')[0]], `${name}: TEMPORAL_ADDRESS`);
    if (env.AWS_ENDPOINT_URL_S3) assert.ok(services[new URL(env.AWS_ENDPOINT_URL_S3).hostname], `${name}: S3`);
  }

  // the workers: CPU on the shared queue, GPU on its own with one activity and a device reservation
  const cpu = envOf(services.worker);
  const gpu = envOf(services['worker-gpu']);
  assert.equal(cpu.MERGEFLOW_TASK_QUEUE, 'mergeflow');
  assert.notEqual(gpu.MERGEFLOW_TASK_QUEUE, cpu.MERGEFLOW_TASK_QUEUE, 'GPU work has a task queue of its own');
  assert.equal(gpu.MERGEFLOW_WORKER_ACTIVITIES, '1', 'one activity per GPU');
  const devices = services['worker-gpu'].deploy.resources.reservations.devices;
  assert.deepEqual(
    devices.map((d: Obj) => [d.driver, d.count, d.capabilities]),
    [['nvidia', 1, ['gpu']]],
  );
  for (const [name, env] of [
    ['worker', cpu],
    ['worker-gpu', gpu],
  ] as const) {
    const grace = shutdownGraceMs(env) / 1000;
    assert.ok(composeSeconds(services[name].stop_grace_period) > grace, `${name}: Docker waits past the grace`);
    parseAddress(env.MERGEFLOW_METRICS_ADDRESS);
  }
  assert.ok(shutdownGraceMs(gpu) / 1000 > EPOCH_SECONDS, `GPU grace longer than one epoch (${EPOCH_SECONDS} s)`);

  // every required variable is in env.example
  const example = fs.readFileSync(path.join(DEPLOY, 'env.example'), 'utf8');
  for (const [, name] of text.matchAll(/\$\{(\w+):\?/g)) assert.match(example, new RegExp(`^${name}=`, 'm'), name);
});

/** Every document of every manifest the kustomization lists. */
function manifests(): { kustomization: Obj; docs: Obj[] } {
  const kustomization = parse(fs.readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
  const files = fs.readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...kustomization.resources].sort(), files.sort(), 'the kustomization lists every manifest');
  const docs: Obj[] = [];
  for (const f of files) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(K8S, f), 'utf8'))) {
      assert.deepEqual(d.errors, [], f);
      docs.push(d.toJS() as Obj);
    }
  }
  return { kustomization, docs };
}

test('kubernetes: GPU workers on their own queue, one GPU and one activity each, grace longer than an epoch', () => {
  const { kustomization, docs } = manifests();
  for (const d of docs) {
    assert.ok(d.apiVersion && d.kind && d.metadata?.name, `apiVersion, kind, metadata.name: ${JSON.stringify(d)}`);
    if (d.kind !== 'Namespace') assert.equal(d.metadata.namespace, kustomization.namespace, d.metadata.name);
  }
  assert.ok(docs.some((d) => d.kind === 'Namespace' && d.metadata.name === kustomization.namespace));
  const named = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
  const config = docs.find((d) => d.kind === 'ConfigMap')!;
  const metricsPort = parseAddress(config.data.MERGEFLOW_METRICS_ADDRESS).port;

  const deployments = docs.filter((d) => d.kind === 'Deployment');
  const queues = new Map<string, string>();
  for (const dep of deployments) {
    const name = dep.metadata.name;
    const tpl = dep.spec.template;
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(tpl.metadata.labels[k], v, name);
    assert.equal(Number(tpl.metadata.annotations['prometheus.io/port']), metricsPort, `${name}: scrape port`);
    const [c] = tpl.spec.containers;
    assert.ok(c.image && c.name, name);
    for (const src of c.envFrom) {
      if (src.configMapRef) assert.ok(named('ConfigMap', src.configMapRef.name), `${name}: ${src.configMapRef.name}`);
      if (src.secretRef) assert.ok(named('Secret', src.secretRef.name), `${name}: ${src.secretRef.name}`);
    }
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value]));
    queues.set(name, env.MERGEFLOW_TASK_QUEUE);
    const ports = (c.ports as Obj[]).map((p) => p.name);
    assert.ok(
      c.ports.some((p: Obj) => p.containerPort === metricsPort),
      `${name}: metrics port`,
    );
    if (c.livenessProbe?.httpGet) assert.ok(ports.includes(c.livenessProbe.httpGet.port), `${name}: probe port`);
    const volumes = ((tpl.spec.volumes ?? []) as Obj[]).map((v) => v.name);
    for (const m of (c.volumeMounts ?? []) as Obj[]) assert.ok(volumes.includes(m.name), `${name}: volume ${m.name}`);
    // Kubernetes kills the pod only after the worker's own grace
    const grace = shutdownGraceMs(env) / 1000;
    assert.ok(tpl.spec.terminationGracePeriodSeconds > grace, `${name}: pod grace > worker grace`);

    const gpus = c.resources?.limits?.['nvidia.com/gpu'];
    if (gpus !== undefined) {
      assert.equal(gpus, 1, `${name}: one GPU per pod`);
      assert.equal(c.resources.requests['nvidia.com/gpu'], gpus, `${name}: GPU requests equal limits`);
      assert.equal(env.MERGEFLOW_WORKER_ACTIVITIES, '1', `${name}: one activity per GPU`);
      assert.ok(grace > EPOCH_SECONDS, `${name}: graceful shutdown (${grace} s) longer than one epoch`);
      assert.ok(
        (tpl.spec.tolerations as Obj[]).some((t) => t.key === 'nvidia.com/gpu'),
        `${name}: tolerates GPU nodes`,
      );
    }
  }
  const gpuDeps = deployments.filter((d) => d.spec.template.spec.containers[0].resources?.limits?.['nvidia.com/gpu']);
  assert.equal(gpuDeps.length, 1, 'one GPU worker deployment');
  const gpuQueue = queues.get(gpuDeps[0].metadata.name);
  assert.ok(gpuQueue, 'the GPU workers name their task queue');
  for (const [name, q] of queues)
    if (name !== gpuDeps[0].metadata.name) assert.notEqual(q, gpuQueue, `${name} does not poll the GPU queue`);
  // the disruption budget covers the GPU pods
  const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget')!;
  const labels = gpuDeps[0].spec.template.metadata.labels;
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(labels[k], v, `PDB selects ${k}`);
});
