/** Evaluation as an activity: accuracy of a model on tasks (or a suite's targets); returns the small JSON. */
import { Context } from '@temporalio/activity';
import { ensureBackend, evaluateModel, SuiteAccuracy, TaskEvalSpec } from '../core/eval/evaluate';
import { openSuite } from '../core/suite/manifest';
import { heartbeatProgress } from './heartbeat';

export interface EvaluateModelInput {
  /** Model folder URI (config.json + model.safetensors). */
  model: string;
  /** Tasks to evaluate on; or give `suite` to use its target tasks. */
  tasks?: TaskEvalSpec[];
  /** Suite folder URI (its target tasks are used when `tasks` is absent). */
  suite?: string;
  batchSize?: number;
  /** At most this many test rows per task. */
  limit?: number;
}

export function createEvalActivities() {
  return {
    async evaluateModel(input: EvaluateModelInput): Promise<SuiteAccuracy> {
      let tasks = input.tasks;
      if (!tasks?.length) {
        if (!input.suite) throw new Error('evaluateModel: give tasks or a suite');
        const suite = await openSuite(input.suite);
        tasks = suite.targets.map((n) => {
          const t = suite.task(n);
          return { name: n, test: t.test, head: t.head };
        });
      }
      await ensureBackend();
      Context.current().heartbeat({ step: 'evaluate', done: 0, total: tasks.length });
      const r = await evaluateModel(input.model, tasks, {
        batchSize: input.batchSize,
        limit: input.limit,
        onBatch: heartbeatProgress('evaluate'),
      });
      return { average: r.average, tasks: r.tasks };
    },
  };
}

export type EvalActivities = ReturnType<typeof createEvalActivities>;
