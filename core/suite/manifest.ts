/**
 * suite.json: what a suite holds and where. Paths inside are relative to the suite folder, so a suite can be
 * copied or moved (file:// <-> s3://) as a whole; openSuite() resolves them to absolute URIs.
 *
 * Everything but the `build` block is a function of (seed, size, recipe, mergeflow version): two builds with
 * the same seed write the same bytes for every other file, and the same suite.json apart from `build`.
 */
import { z } from 'zod';
import { joinUri, normalizeUri, NotFoundError, readJson } from '../store';

export const SUITE_FILE = 'suite.json';
export const SUITE_FORMAT = 'mergeflow-suite';
/**
 * The suite's version: bumped whenever the recipe or the task set changes what a build means, so that old and
 * new builds are never mixed up (openSuite refuses other versions). 1: canonical-view heads at logit scale 100
 * (failed the entropy premise); 2: class-mean prototype heads, which pass the validity check but leave
 * AdaMerging no room (every target reads the same prototypes); 3: heads mixed with a seeded random direction per
 * class, and digits-edges in place of digits-ge5 as a target; 4: digits-noise in place of digits-parity as a
 * target, which makes the validity check pass on seeds 0, 1 and 2; 5: four encoder layers, a projection of 256,
 * and heads mixed at 0.2 with logit scale 15 (see README).
 */
export const SUITE_VERSION = 5;

const rel = z.string().min(1);

export const suiteTaskSchema = z.object({
  name: z.string(),
  kind: z.enum(['target', 'irrelevant']),
  classes: z.number().int().positive(),
  classNames: z.array(z.string()),
  transform: z.string(),
  label: z.string(),
  model: rel,
  head: rel,
  train: rel,
  test: rel,
  finetune: z.object({ lossStart: z.number(), lossEnd: z.number() }),
});

export const suiteManifestSchema = z.object({
  format: z.literal(SUITE_FORMAT),
  version: z.literal(SUITE_VERSION),
  name: z.string(),
  seed: z.number().int(),
  size: z.enum(['full', 'small']),
  imageShape: z.tuple([z.number(), z.number(), z.number()]),
  pretrained: rel,
  pretext: z.object({
    objective: z.string(),
    description: z.string(),
    classes: z.array(z.string()),
    lossStart: z.number(),
    lossEnd: z.number(),
  }),
  heads: z.object({ kind: z.string(), description: z.string(), logitScale: z.number() }),
  recipe: z.record(z.string(), z.unknown()),
  tasks: z.array(suiteTaskSchema),
  targets: z.array(z.string()),
  irrelevant: z.array(z.string()),
  data: rel,
  /** sha256 of every other file of the suite, by relative path. */
  files: z.record(z.string(), z.string()),
  build: z
    .object({
      startedAt: z.string(),
      seconds: z.number(),
      backend: z.string(),
      workers: z.number(),
      mergeflow: z.string(),
      phases: z.record(z.string(), z.number()),
    })
    .passthrough(),
});

export type SuiteManifest = z.infer<typeof suiteManifestSchema>;
export type SuiteTask = z.infer<typeof suiteTaskSchema>;

export class SuiteError extends Error {
  override name = 'SuiteError';
}

/** A suite with every path resolved to an absolute URI. */
export interface Suite {
  /** The suite folder. */
  uri: string;
  manifest: SuiteManifest;
  pretrained: string;
  tasks: (SuiteTask & { model: string; head: string; train: string; test: string })[];
  targets: string[];
  irrelevant: string[];
  task(name: string): Suite['tasks'][number];
}

/** The suite folder for SUITE given as a folder, its suite.json, a file:// / s3:// URI or a plain path. */
export function suiteFolder(uriOrPath: string): string {
  const uri = normalizeUri(uriOrPath).replace(/\/+$/, '');
  return uri.endsWith('/' + SUITE_FILE) ? uri.slice(0, -SUITE_FILE.length - 1) : uri;
}

export async function openSuite(uriOrPath: string): Promise<Suite> {
  const folder = suiteFolder(uriOrPath);
  const file = joinUri(folder, SUITE_FILE);
  let json: unknown;
  try {
    json = await readJson(file, (why) => new SuiteError(`${file}: not valid JSON (${why})`));
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new SuiteError(
        `${folder}: not a suite (no ${SUITE_FILE}); build one with 'mergeflow suite build ${uriOrPath}'`,
      );
    }
    throw e;
  }
  const version = (json as { version?: unknown } | null)?.version;
  if ((json as { format?: unknown } | null)?.format === SUITE_FORMAT && version !== SUITE_VERSION) {
    throw new SuiteError(
      `${file}: suite version ${String(version)}, but this mergeflow reads version ${SUITE_VERSION} only; ` +
        `rebuild it with 'mergeflow suite build ${uriOrPath}' (into a new folder)`,
    );
  }
  const r = suiteManifestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SuiteError(`${file}: not a valid suite manifest (${i.path.join('.') || 'top level'}: ${i.message})`);
  }
  const m = r.data;
  const abs = (p: string) => joinUri(folder, p);
  const tasks = m.tasks.map((t) => ({
    ...t,
    model: abs(t.model),
    head: abs(t.head),
    train: abs(t.train),
    test: abs(t.test),
  }));
  const byName = new Map(tasks.map((t) => [t.name, t]));
  return {
    uri: folder,
    manifest: m,
    pretrained: abs(m.pretrained),
    tasks,
    targets: m.targets,
    irrelevant: m.irrelevant,
    task(name: string) {
      const t = byName.get(name);
      if (!t)
        throw new SuiteError(
          `${folder}: no task '${name}' in this suite; it has ${m.tasks.map((x) => x.name).join(', ')}`,
        );
      return t;
    },
  };
}
