/**
 * `mergeflow suite config`: a ready-to-run merge config for a suite: base = the pretrained model, models = the
 * 8 fine-tuned target models (+ N irrelevant ones), the method's default parameters, output = a folder under
 * the suite. The suite's heads and data go in an extra `suite:` field, which the config schema passes through
 * (data-driven methods read their heads and data from it). All references are absolute URIs, so the YAML
 * works wherever it is saved.
 */
import { stringify } from 'yaml';
import { applySet } from '../config/load';
import { ADAMERGING, adamergingParams } from '../merge/adamerging/params';
import { FRANK_WOLFE, frankWolfeParams } from '../merge/frank_wolfe/params';
import { DATA_FREE_METHODS, dataFreeMethod } from '../merge/registry';
import { joinUri } from '../store';
import { Suite, SuiteError } from './manifest';

export interface SuiteConfigOptions {
  method: string;
  /** Irrelevant models added to the pool (the first N of the suite's irrelevant tasks). */
  irrelevant?: number;
  /** Override the output folder. */
  output?: string;
  /** Override method parameters (merged over the defaults). */
  parameters?: Record<string, unknown>;
  /** `path=value` overrides applied last, as `mergeflow run --set` does (e.g. parameters.granularity=task). */
  sets?: readonly string[];
}

/**
 * Frank-Wolfe's suite default: the variant that stays stable as irrelevant models join the pool. FW-Hard starts
 * from Task Arithmetic over the whole pool and so inherits every irrelevant model; FW-Soft from the pretrained
 * model lets in only what the oracle selects (the authors' stable ViT setting: FW-Soft, start at the pretrained
 * model, 5 iterations of 500 AdaMerging steps, task-wise oracle). The oracle scores task vectors: on this suite
 * cos(g, θm) against full weights ranks the pool by little more than its weight norms (README, Frank-Wolfe runs).
 * The step sizes are learned on the labeled proxy set the oracle's gradient already reads (step_objective proxy):
 * with AdaMerging's entropy they fell below Task Arithmetic on the seeds whose suite breaks the entropy premise
 * (seeds 1 and 2); with the proxy set FW-Soft stays flat and above Task Arithmetic on seeds 0, 1 and 2
 * (docs/frank-wolfe-results.md).
 */
export const FW_SUITE_DEFAULTS = {
  variant: 'soft',
  start: 'pretrained',
  oracle: 'task',
  oracle_basis: 'task_vectors',
  step_objective: 'proxy',
  iterations: 5,
  adamerging_steps: 500,
} as const;

/** Default parameters of a method: its schema's defaults (Frank-Wolfe: FW_SUITE_DEFAULTS over them). */
export function defaultParameters(method: string): Record<string, unknown> {
  if (method === ADAMERGING) return adamergingParams.parse({}) as Record<string, unknown>;
  if (method === FRANK_WOLFE) return frankWolfeParams.parse(FW_SUITE_DEFAULTS) as Record<string, unknown>;
  if (!DATA_FREE_METHODS[method]) {
    throw new SuiteError(
      `unknown merge method '${method}'; choose one of ${[...Object.keys(DATA_FREE_METHODS), ADAMERGING, FRANK_WOLFE].join(', ')}`,
    );
  }
  return dataFreeMethod(method).params.parse({}) as Record<string, unknown>;
}

/** The folder a method's merge of this suite is written to by default. */
export function mergedFolder(suite: Suite, method: string, irrelevant = 0): string {
  return joinUri(suite.uri, 'merged', irrelevant ? `${method}-irrelevant${irrelevant}` : method);
}

/** AdaMerging's tasks: each target's model, head and test inputs (labels are read only to evaluate the merge). */
export function adaMergingTasks(suite: Suite): { name: string; model: string; head: string; data: string }[] {
  return suite.targets.map((name) => {
    const t = suite.task(name);
    return { name, model: t.model, head: t.head, data: t.test };
  });
}

/** False for a suite unpacked from a targets-only pack (its irrelevant tasks have data and heads, not models). */
export function suiteHasIrrelevantModels(suite: Suite): boolean {
  return (suite.manifest?.build?.unpacked as { models?: string } | undefined)?.models !== 'targets';
}

export function suiteMergeConfig(suite: Suite, opts: SuiteConfigOptions): Record<string, unknown> {
  const n = opts.irrelevant ?? 0;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new SuiteError(`--irrelevant must be a non-negative integer, got ${opts.irrelevant}`);
  if (n > suite.irrelevant.length) {
    throw new SuiteError(`--irrelevant ${n}: this suite has only ${suite.irrelevant.length} irrelevant models`);
  }
  const parameters = { ...defaultParameters(opts.method), ...(opts.parameters ?? {}) };
  const ada = opts.method === ADAMERGING;
  if (ada && n) {
    throw new SuiteError(
      `--irrelevant ${n}: AdaMerging learns one λ per target task from that task's inputs; it takes no extra pool models`,
    );
  }
  if (n > 0 && !suiteHasIrrelevantModels(suite)) {
    throw new SuiteError(
      `--irrelevant ${n}: ${suite.uri} was unpacked from a targets-only pack and holds no irrelevant models; build the whole suite with 'mergeflow suite build'`,
    );
  }
  const irr = suite.irrelevant.slice(0, n);
  const models = [...suite.targets, ...irr].map((name) => ({ name, checkpoint: suite.task(name).model }));
  const fw = opts.method === FRANK_WOLFE;
  // Frank-Wolfe: each target's head, its train split as the labeled proxy set, its test inputs (FW-Soft, evaluation)
  const targets = suite.targets.map((name) => {
    const t = suite.task(name);
    return { name, head: t.head, proxy: t.train, data: t.test };
  });
  const tasks = adaMergingTasks(suite);
  const name = `${suite.manifest.name}-${opts.method}${n ? `-irrelevant${n}` : ''}`.replace(/[^A-Za-z0-9_.-]/g, '-');
  const doc: Record<string, unknown> = {
    name,
    method: opts.method,
    base: suite.pretrained,
    ...(ada ? { tasks } : fw ? { pool: models, targets } : { models }),
    parameters,
    output: opts.output ?? mergedFolder(suite, opts.method, n),
    suite: {
      uri: suite.uri,
      name: suite.manifest.name,
      seed: suite.manifest.seed,
      size: suite.manifest.size,
      tasks: Object.fromEntries(
        suite.targets.map((t) => {
          const x = suite.task(t);
          return [t, { head: x.head, train: x.train, test: x.test, classes: x.classes }];
        }),
      ),
      irrelevant: irr,
    },
  };
  for (const set of opts.sets ?? []) applySet(doc, set);
  return doc;
}

/** The config as YAML, with a short comment on top. */
export function suiteConfigYaml(suite: Suite, opts: SuiteConfigOptions): string {
  const doc = suiteMergeConfig(suite, opts);
  const head =
    `# ${opts.method} over the ${suite.manifest.name} suite (${suite.uri}, seed ${suite.manifest.seed}, ${suite.manifest.size})\n` +
    `# ${suite.targets.length} target models${opts.irrelevant ? ` + ${opts.irrelevant} irrelevant` : ''}; run with: mergeflow run THIS.yaml --wait\n` +
    (opts.method === ADAMERGING
      ? `# AdaMerging: set parameters.granularity (layer|task) and parameters.variant (plain|ties = AdaMerging++) here or with --set\n`
      : opts.method === FRANK_WOLFE
        ? `# Frank-Wolfe: FW-Soft from the pretrained model (stable as irrelevant models join); FW-Hard: --set parameters.variant=hard --set parameters.start=ta\n`
        : '');
  return head + stringify(doc, { lineWidth: 0 });
}
