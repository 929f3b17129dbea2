/**
 * The mini-8 suite, small size: reproducible bytes from the seed (two builds with one seed are identical,
 * another seed differs), the layout and manifest, `suite config` (accepted by the config schema as is) and
 * `suite report` (table, JSON, PNG), `suite pack` / `unpack`. Builds go through the CLI, as a user runs them.
 */
import { TARGET_TASKS } from '../core/data/tasks';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../core/config/load';
import { loadClipVision, disposeParams } from '../core/models/clip_vit';
import { loadHead, disposeHead } from '../core/models/head';
import { openDataset } from '../core/data/dataset';
import { ensureBackend } from '../core/eval/evaluate';
import { openSuite, SuiteManifest } from '../core/suite/manifest';
import { runCli, s3Prefix, tmpDir } from './helpers/env';
import { Checkpoint } from '../core/safetensors';
import { floatToHalf, halfToFloat } from '../core/safetensors/dtype';

const toFloat16 = (x: number): number => Math.fround(halfToFloat(floatToHalf(x)));
import { joinUri, putObject, storeFor } from '../core/store';

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

function manifestOf(dir: string): SuiteManifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'suite.json'), 'utf8')) as SuiteManifest;
}

async function build(dir: string, seed: number, extra: string[] = []): Promise<void> {
  const r = await runCli(['suite', 'build', dir, '--size', 'small', '--seed', String(seed), ...extra], {}, 120_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /suite mini-8 \(small, seed \d+\) built in/);
  assert.match(r.stderr, /fine-tune \[24\/24\]/, 'progress lines on stderr');
}

describe('mini-8 suite (small)', () => {
  const root = tmpDir('suite');
  const a = path.join(root, 'a');
  const first = path.join(root, 'a-first');
  const b = path.join(root, 'b');

  before(async () => {
    // two same-seed builds into different folders; the second one trains in one worker thread instead of
    // one per core (the bytes must depend on neither)
    await build(first, 1);
    await build(a, 1, ['--workers', '1']);
    await build(b, 2);
    await ensureBackend();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('same seed (and 1 worker vs one per core): identical bytes in every file (suite.json apart from its build block)', () => {
    const fa = filesUnder(a);
    assert.deepEqual(fa, filesUnder(first));
    assert.ok(fa.length > 24 * 2 + 24 * 4, `${fa.length} files`);
    for (const f of fa) {
      if (f === 'suite.json') continue;
      assert.ok(
        fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(first, f))),
        `${f} differs between two builds with seed 1`,
      );
    }
    const ma = manifestOf(a);
    const m1 = manifestOf(first);
    const strip = (m: SuiteManifest) => ({ ...m, build: undefined });
    assert.deepEqual(strip(ma), strip(m1));
  });

  it('another seed: different data, pretrained model, heads and fine-tuned models', () => {
    const ma = manifestOf(a);
    const mb = manifestOf(b);
    assert.equal(mb.seed, 2);
    for (const f of [
      'models/pretrained/model.safetensors',
      'models/digits/model.safetensors',
      'heads/digits.safetensors',
      'data/digits/train.safetensors',
    ]) {
      assert.notEqual(ma.files[f], mb.files[f], `${f} should differ between seeds`);
      assert.ok(!fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))));
    }
    // config.json depends only on the size
    assert.equal(ma.files['models/pretrained/config.json'], mb.files['models/pretrained/config.json']);
  });

  it('layout: 8 targets + 16 irrelevant, HF model folders, heads, data, hashes', async () => {
    const s = await openSuite(a);
    assert.equal(s.targets.length, 8);
    assert.equal(s.irrelevant.length, 16);
    assert.deepEqual(
      s.targets,
      TARGET_TASKS.map((t) => t.name),
    );
    const pre = await loadClipVision(s.pretrained);
    assert.equal(pre.config.imageSize, 28);
    disposeParams(pre.params);
    for (const name of ['digits', 'source-id']) {
      const t = s.task(name);
      const m = await loadClipVision(t.model);
      const h = await loadHead(t.head);
      assert.deepEqual(h.weight.shape, [t.classes, m.config.projectionDim]);
      assert.ok(Math.abs(h.logitScale - Math.log(10)) < 1e-6); // logit scale 10 since suite v2
      disposeParams(m.params);
      disposeHead(h);
      const test = await openDataset(t.test);
      assert.equal(test.n, 128);
      assert.ok(test.labels);
    }
    const m = s.manifest;
    // suite v3: head rows mix the class prototype with a seeded random direction (recipe headMix)
    assert.equal(m.heads.kind, 'mixed-prototypes');
    assert.match(m.heads.description, /seeded random unit vector/);
    for (const [f, sha] of Object.entries(m.files)) {
      assert.match(sha, /^[0-9a-f]{64}$/);
      assert.ok(fs.existsSync(path.join(a, f)), f);
    }
  });

  it('suite config: a ready-to-run YAML the config schema accepts as is', async () => {
    const r = await runCli(['suite', 'config', a, '--method', 'ties', '--irrelevant', '3']);
    assert.equal(r.code, 0, r.stderr);
    const doc = parseYaml(r.stdout) as Record<string, unknown>;
    const cfg = validateConfig(doc, 'suite config', '/nonexistent-cwd');
    const s = await openSuite(a);
    assert.equal(cfg.method, 'ties');
    assert.equal(cfg.base, s.pretrained);
    assert.deepEqual(
      cfg.models.map((x) => x.name),
      [...s.targets, ...s.irrelevant.slice(0, 3)],
    );
    assert.deepEqual(cfg.parameters, { scaling: 0.3, keep: 0.2, merge: 'sum' });
    assert.equal(cfg.output, `${s.uri}/merged/ties-irrelevant3`);
    const suite = (cfg as unknown as { suite: { tasks: Record<string, { head: string; test: string }> } }).suite;
    assert.deepEqual(Object.keys(suite.tasks), s.targets);
    assert.equal(suite.tasks.digits.head, s.task('digits').head);
    const bad = await runCli(['suite', 'config', a, '--method', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown merge method 'nope'/);
  });

  it("suite report: table in the papers' layout, report.json, a PNG chart", async () => {
    const out = path.join(root, 'report');
    const r = await runCli(['suite', 'report', a, '--json', '--out', out], {}, 120_000);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      rows: { method: string; tasks: Record<string, number>; average: number }[];
      tasks: string[];
    };
    assert.deepEqual(
      j.rows.map((x) => x.method),
      ['pretrained', 'individual', 'weight_average', 'task_arithmetic', 'ties'],
    );
    for (const row of j.rows) {
      assert.deepEqual(Object.keys(row.tasks), j.tasks);
      for (const v of Object.values(row.tasks)) assert.ok(v >= 0 && v <= 1);
    }
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(
      md,
      /\| Method \| digits \| fashion \| digits-rot90 \| fashion-groups \| fashion-vflip \| digits-noise \| fashion-zoom \| digits-edges \| Avg\. \|/,
    );
    assert.match(md, /\| Task Arithmetic \|( \d+\.\d \|){8} \*\*\d+\.\d\*\* \|/);
    const png = fs.readFileSync(path.join(out, 'report.png'));
    assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])));
    assert.ok(png.length > 10_000);
    assert.ok(fs.existsSync(path.join(a, 'merged', 'task_arithmetic', 'model.safetensors')));
    assert.ok(fs.existsSync(path.join(a, 'merged', 'task_arithmetic', 'config.json')));
  });

  it('suite pack / unpack: F16 models through S3, data rebuilt and checked, a tampered pack refused', async () => {
    const pack = s3Prefix('suite-pack');
    const out = path.join(root, 'unpacked');
    const p = await runCli(['suite', 'pack', a, pack]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /packed \d+ files \(F16\) of suite mini-8 seed 1/);
    const u = await runCli(['suite', 'unpack', pack, out], {}, 120_000);
    assert.equal(u.code, 0, u.stderr);
    const [orig, back] = [manifestOf(a), manifestOf(out)];
    const { build: _b1, files: f1, ...rest1 } = orig;
    const { build: _b2, files: f2, ...rest2 } = back;
    assert.deepEqual(rest2, rest1);
    assert.deepEqual(Object.keys(f2), Object.keys(f1));
    for (const [rel, sha] of Object.entries(f1)) {
      // data and heads: the original bytes; models: F32 again, to F16 precision
      if (!rel.endsWith('model.safetensors')) assert.equal(f2[rel], sha, rel);
    }
    const s = await openSuite(out);
    const [m1, m2] = [
      await Checkpoint.open(path.join(a, 'models', 'digits', 'model.safetensors')),
      await Checkpoint.open(s.task('digits').model),
    ];
    for (const t of m1.tensors) {
      const [x, y] = [await m1.readFloat32(t.name), await m2.readFloat32(t.name)];
      assert.equal(m2.info(t.name).dtype, 'F32');
      for (let i = 0; i < x.length; i++) assert.equal(y[i], toFloat16(x[i]), `${t.name}[${i}]`);
    }
    // a packed file that is not the one pack.json hashed is refused, and nothing is written
    const head = joinUri(pack, 'heads', 'digits.safetensors');
    const bytes = await storeFor(head).readAll(head);
    bytes[bytes.length - 1] ^= 1;
    await putObject(head, bytes);
    const bad = await runCli(['suite', 'unpack', pack, path.join(root, 'never')]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /heads\/digits\.safetensors: sha256 differs from pack\.json/);
    assert.equal(fs.existsSync(path.join(root, 'never')), false);
  });

  it('suite pack --targets-only: the pretrained and target models only; the unpacked suite refuses irrelevant models', async () => {
    const pack = path.join(root, 'pack-targets');
    const out = path.join(root, 'unpacked-targets');
    const p = await runCli(['suite', 'pack', a, pack, '--targets-only']);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /packed \d+ files \(F16, targets only\)/);
    const orig = manifestOf(a);
    const packed = fs.readdirSync(path.join(pack, 'models')).sort();
    assert.deepEqual(packed, ['pretrained', ...orig.targets].sort());
    assert.equal(JSON.parse(fs.readFileSync(path.join(pack, 'pack.json'), 'utf8')).models, 'targets');
    const u = await runCli(['suite', 'unpack', pack, out], {}, 120_000);
    assert.equal(u.code, 0, u.stderr);
    const back = manifestOf(out);
    assert.equal((back.build as { unpacked?: { models?: string } }).unpacked?.models, 'targets');
    assert.deepEqual(back.targets, orig.targets);
    assert.ok(fs.existsSync(path.join(out, 'models', orig.targets[0], 'model.safetensors')));
    assert.equal(fs.existsSync(path.join(out, 'models', orig.irrelevant[0])), false);
    // the targets' configs still work; a pool with irrelevant models is refused with the reason
    const ok = await runCli(['suite', 'config', out, '--method', 'task_arithmetic']);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await runCli(['suite', 'config', out, '--method', 'task_arithmetic', '--irrelevant', '2']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unpacked from a targets-only pack and holds no irrelevant models/);
    // and a targets-only suite is not packed again as if it were whole
    const again = await runCli(['suite', 'pack', out, path.join(root, 'pack-again')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /unpacked from a targets-only pack/);
  });
});
