import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkImageSize, openDataset } from '../core/data/dataset';
import { FASHION_CLASSES, loadSource, SOURCE_COUNTS } from '../core/data/sources';
import {
  buildTaskData,
  FASHION_GROUP,
  IMAGE_SHAPE,
  IRRELEVANT_TASKS,
  SPLIT_SIZES,
  TARGET_TASKS,
  TaskData,
  TASKS,
  TEST_POOL,
  writeTaskDatasets,
} from '../core/data/tasks';

const tmpDirs: string[] = [];
after(async () => {
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

function hashOf(d: TaskData): string {
  const h = createHash('sha256');
  for (const s of [d.train, d.test]) {
    h.update(s.images);
    h.update(new Uint8Array(s.labels.buffer, s.labels.byteOffset, s.labels.byteLength));
  }
  return h.digest('hex');
}

test('sources load the expected counts from the npm packages', async () => {
  const m = await loadSource('mnist');
  const f = await loadSource('fashion');
  assert.equal(m.n, 10_000);
  assert.equal(f.n, 70_000);
  assert.equal(SOURCE_COUNTS.mnist, 10_000);
  for (const s of [m, f]) {
    assert.equal(s.images.length, s.n * 28 * 28);
    assert.equal(s.labels.length, s.n);
    assert.equal(s.height, 28);
    assert.equal(s.width, 28);
    const counts = new Array(10).fill(0);
    for (const l of s.labels) counts[l]++;
    assert.ok(
      counts.every((c) => c > 800),
      `${s.name} class counts ${counts}`,
    );
    let max = 0;
    for (let i = 0; i < s.images.length; i += 7) max = Math.max(max, s.images[i]);
    assert.ok(max >= 250, `${s.name} pixels reach white`);
  }
  assert.deepEqual(
    [...m.labels].reduce((a, l) => ((a[l] += 1), a), new Array(10).fill(0)),
    [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978],
  );
  assert.ok([...f.labels].reduce((a, l) => ((a[l] += 1), a), new Array(10).fill(0)).every((c: number) => c === 7000));
  assert.equal(f.classNames[9], 'Ankle boot');
  assert.equal(FASHION_CLASSES.length, 10);
  // loaded once per process
  assert.equal(await loadSource('mnist'), m);
});

test('the task table: 8 targets, 16 irrelevant, distinct names and consistent classes', () => {
  assert.equal(TASKS.length, 24);
  assert.equal(TARGET_TASKS.length, 8);
  assert.equal(IRRELEVANT_TASKS.length, 16);
  assert.equal(new Set(TASKS.map((t) => t.name)).size, 24);
  assert.deepEqual(
    TARGET_TASKS.map((t) => t.name),
    [
      'digits',
      'fashion',
      'digits-rot90',
      'fashion-groups',
      'fashion-vflip',
      'digits-noise',
      'fashion-zoom',
      'digits-edges',
    ],
  );
  for (const t of TASKS) {
    assert.equal(t.classes, t.classNames.length, t.name);
    assert.ok(t.classes >= 2, t.name);
    assert.ok(['mnist', 'fashion', 'mixed'].includes(t.source));
    assert.ok(t.transformDoc.length > 0 && t.labelDoc.length > 0);
  }
  // targets are distinct problems: no two share source, transform and label meaning
  const keys = TARGET_TASKS.map((t) => `${t.source}|${t.transform}|${t.labelDoc}`);
  assert.equal(new Set(keys).size, 8);
  assert.deepEqual(IMAGE_SHAPE, [1, 28, 28]);
});

test('every task builds (small): shapes, sizes, labels in range; deterministic per seed', async () => {
  const first = new Map<string, string>();
  for (const t of TASKS) {
    const d = await buildTaskData(t.name, { seed: 1, size: 'small' });
    for (const split of ['train', 'test'] as const) {
      const s = d[split];
      assert.equal(s.n, SPLIT_SIZES.small[split]);
      assert.deepEqual(s.shape, [s.n, 1, 28, 28]);
      assert.equal(s.images.length, s.n * 784);
      assert.equal(s.labels.length, s.n);
      const seen = new Set<number>();
      for (const l of s.labels) {
        assert.ok(Number.isInteger(l) && l >= 0 && l < t.classes, `${t.name}/${split}: label ${l}`);
        seen.add(l);
      }
      if (split === 'train') assert.equal(seen.size, t.classes, `${t.name}: every class appears in train`);
    }
    assert.deepEqual(d.prep, { mean: [0.5], std: [0.5], size: [28, 28], classes: t.classes, task: t.name });
    first.set(t.name, hashOf(d));
  }
  // the same seed gives the same bytes; another seed gives other bytes
  assert.equal(new Set(first.values()).size, 24);
  for (const name of ['digits', 'fashion-noise', 'digits-permuted', 'source-id', 'digits-shift', 'fashion-labelperm']) {
    assert.equal(hashOf(await buildTaskData(name, { seed: 1, size: 'small' })), first.get(name), name);
    assert.notEqual(hashOf(await buildTaskData(name, { seed: 2, size: 'small' })), first.get(name), name);
  }
});

test('full splits: sizes, test images never in any train split of the same source, small is a prefix of full', async () => {
  const full = await buildTaskData('digits', { seed: 5, size: 'full' });
  assert.equal(full.train.n, SPLIT_SIZES.full.train);
  assert.equal(full.test.n, SPLIT_SIZES.full.test);
  assert.ok(SPLIT_SIZES.full.test <= TEST_POOL.mnist);
  const small = await buildTaskData('digits', { seed: 5, size: 'small' });
  assert.deepEqual(small.train.images, full.train.images.subarray(0, small.train.images.length));
  assert.deepEqual(small.test.labels, full.test.labels.subarray(0, small.test.n));
  const noisyFull = await buildTaskData('digits-noise', { seed: 5, size: 'full' });
  const noisySmall = await buildTaskData('digits-noise', { seed: 5, size: 'small' });
  assert.deepEqual(noisySmall.train.images, noisyFull.train.images.subarray(0, noisySmall.train.images.length));

  // no train/test leak across tasks of a source: all train origins and all test origins are disjoint
  const trainIdx = new Set<string>();
  const testIdx = new Set<string>();
  for (const name of ['digits', 'digits-rot90', 'digits-parity', 'fashion', 'fashion-groups', 'source-id']) {
    const d = name === 'digits' ? full : await buildTaskData(name, { seed: 5, size: 'full' });
    for (let i = 0; i < d.train.n; i++) trainIdx.add(`${d.train.origin.source[i]}:${d.train.origin.index[i]}`);
    for (let i = 0; i < d.test.n; i++) testIdx.add(`${d.test.origin.source[i]}:${d.test.origin.index[i]}`);
    // rows inside a split are distinct images
    assert.equal(
      new Set(Array.from(d.train.origin.index, (x, i) => `${d.train.origin.source[i]}:${x}`)).size,
      d.train.n,
    );
  }
  for (const k of testIdx) assert.ok(!trainIdx.has(k), `image ${k} is in a test split and a train split`);
  // a different count can be asked for
  const custom = await buildTaskData('fashion', { seed: 5, size: 'small', counts: { train: 10 } });
  assert.equal(custom.train.n, 10);
  assert.equal(custom.test.n, SPLIT_SIZES.small.test);
  // another layout: 3 channels (grey repeated), edge-padded to 32 px
  const rgb = await buildTaskData('fashion-invert', { seed: 5, size: 'small', image: { channels: 3, size: 32 } });
  const grey = await buildTaskData('fashion-invert', { seed: 5, size: 'small' });
  assert.deepEqual(rgb.train.shape, [256, 3, 32, 32]);
  assert.deepEqual(rgb.prep.size, [32, 32]);
  assert.deepEqual(rgb.train.labels, grey.train.labels);
  for (const [c, y, x, gy, gx] of [
    [0, 2, 2, 0, 0],
    [1, 10, 17, 8, 15],
    [2, 31, 0, 27, 0],
    [2, 0, 31, 0, 27],
  ]) {
    assert.equal(rgb.train.images[5 * 3 * 1024 + c * 1024 + y * 32 + x], grey.train.images[5 * 784 + gy * 28 + gx]);
  }
  await assert.rejects(buildTaskData('nope', { seed: 1, size: 'small' }), /unknown task 'nope'/);
  await assert.rejects(
    buildTaskData('digits', { seed: 1, size: 'small', counts: { test: 2001 } }),
    /test pool of mnist holds 2000 images/,
  );
});

test('labels and images mean what the table says', async () => {
  const mnist = await loadSource('mnist');
  const fashion = await loadSource('fashion');
  const src = (s: number) => (s === 0 ? mnist : fashion);
  const px = (d: TaskData, i: number, y: number, x: number) => d.train.images[i * 784 + y * 28 + x];
  const orig = (d: TaskData, i: number, y: number, x: number) =>
    src(d.train.origin.source[i]).images[d.train.origin.index[i] * 784 + y * 28 + x];
  const srcLabel = (d: TaskData, i: number) => src(d.train.origin.source[i]).labels[d.train.origin.index[i]];

  const parity = await buildTaskData('digits-parity', { seed: 9, size: 'small' });
  const ge5 = await buildTaskData('digits-ge5', { seed: 9, size: 'small' });
  const groups = await buildTaskData('fashion-groups', { seed: 9, size: 'small' });
  const mod3 = await buildTaskData('digits-mod3', { seed: 9, size: 'small' });
  const sid = await buildTaskData('source-id', { seed: 9, size: 'small' });
  const rot = await buildTaskData('digits-rot90', { seed: 9, size: 'small' });
  const inv = await buildTaskData('fashion-invert', { seed: 9, size: 'small' });
  const vf = await buildTaskData('fashion-vflip', { seed: 9, size: 'small' });
  const perm = await buildTaskData('digits-labelperm', { seed: 9, size: 'small' });
  for (let i = 0; i < 256; i++) {
    assert.equal(parity.train.labels[i], srcLabel(parity, i) % 2);
    assert.equal(ge5.train.labels[i], srcLabel(ge5, i) >= 5 ? 1 : 0);
    assert.equal(groups.train.labels[i], FASHION_GROUP[srcLabel(groups, i)]);
    assert.equal(mod3.train.labels[i], srcLabel(mod3, i) % 3);
    assert.equal(sid.train.labels[i], sid.train.origin.source[i]);
    assert.equal(rot.train.labels[i], srcLabel(rot, i));
    for (const [y, x] of [
      [3, 5],
      [10, 20],
      [27, 0],
      [14, 14],
    ]) {
      assert.equal(px(rot, i, y, x), orig(rot, i, 27 - x, y)); // clockwise
      assert.equal(px(inv, i, y, x), 255 - orig(inv, i, y, x));
      assert.equal(px(vf, i, y, x), orig(vf, i, 27 - y, x));
    }
  }
  // the label permutation is one fixed derangement shared by train and test
  const map = new Map<number, number>();
  for (const s of [perm.train, perm.test]) {
    for (let i = 0; i < s.n; i++) {
      const from = mnist.labels[s.origin.index[i]];
      if (map.has(from)) assert.equal(map.get(from), s.labels[i]);
      map.set(from, s.labels[i]);
      assert.notEqual(s.labels[i], from);
    }
  }
  assert.equal(new Set(map.values()).size, map.size);
  // source-id mixes both sources
  const fromFashion = sid.train.origin.source.reduce((a, s) => a + s, 0);
  assert.ok(fromFashion > 64 && fromFashion < 192);
});

test('writeTaskDatasets writes datasets that openDataset reads back', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mf-tasks-'));
  tmpDirs.push(dir);
  const root = pathToFileURL(dir).href;
  const written = await writeTaskDatasets(root, {
    seed: 3,
    size: 'small',
    tasks: ['fashion-groups', 'digits-quadrant'],
  });
  assert.deepEqual(
    written.map((w) => w.task),
    ['fashion-groups', 'digits-quadrant'],
  );
  const listing = JSON.parse(await fs.readFile(path.join(dir, 'tasks.json'), 'utf8'));
  assert.equal(listing.tasks.length, 2);
  // paths relative to the root: the same build in another folder writes the same tasks.json
  assert.equal(listing.tasks[0].train.uri, 'fashion-groups/train.safetensors');
  assert.equal(listing.tasks[1].test.jsonUri, 'digits-quadrant/test.json');
  assert.equal(written[0].train.uri, `${root}/fashion-groups/train.safetensors`);
  const ds = await openDataset(`${root}/fashion-groups/test.safetensors`);
  assert.equal(ds.n, SPLIT_SIZES.small.test);
  assert.equal(ds.classes, 4);
  assert.equal(ds.prep!.task, 'fashion-groups');
  checkImageSize(ds, [1, 28, 28]);
  const d = await buildTaskData('fashion-groups', { seed: 3, size: 'small' });
  const b = await ds.readRows([0, 5]);
  assert.deepEqual([...b.labels!], [d.test.labels[0], d.test.labels[5]]);
  for (let k = 0; k < 784; k++)
    assert.ok(Math.abs(b.inputs[784 + k] - (d.test.images[5 * 784 + k] / 255 - 0.5) / 0.5) < 1e-6);
});
