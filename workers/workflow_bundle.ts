/**
 * A prebuilt workflow bundle: a worker normally bundles the workflow code with webpack at every start (tens of
 * seconds on a busy machine); with MERGEFLOW_WORKFLOW_BUNDLE naming a file written by writeWorkflowBundle it
 * loads that instead and starts in about a second. The file must come from the same build as the worker.
 */
import * as fs from 'node:fs';
import { bundleWorkflowCode, DefaultLogger, type WorkerOptions } from '@temporalio/worker';

export const WORKFLOW_BUNDLE_ENV = 'MERGEFLOW_WORKFLOW_BUNDLE';

const workflowsPath = () => require.resolve('../workflows');

/** Bundles this build's workflows into `file` (written whole, then renamed into place). */
export async function writeWorkflowBundle(file: string): Promise<void> {
  const logger = new DefaultLogger('WARN'); // webpack's build report only when something is wrong
  const { code } = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, file);
}

/** The Worker.create option that gives the workflow code: the prebuilt bundle when set, else the source. */
export function workflowSource(
  env: NodeJS.ProcessEnv = process.env,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const file = env[WORKFLOW_BUNDLE_ENV]?.trim();
  if (!file) return { workflowsPath: workflowsPath() };
  if (!fs.existsSync(file)) {
    throw new Error(
      `${WORKFLOW_BUNDLE_ENV}=${file}: no such file; write it with writeWorkflowBundle or unset the variable`,
    );
  }
  return { workflowBundle: { codePath: file } };
}
