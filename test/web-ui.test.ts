/**
 * The Temporal Web UI that `mergeflow stack up` serves, opened in headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core): a mergeflow run shows in the workflow list when searched by its search attributes
 * MergeMethod and MergeStatus, not when searched by another method, and the UI's server reports both values.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Client, Connection } from '@temporalio/client';
import { validateConfig } from '../core/config/load';
import type { MergeResult } from '../core/pipeline/run_types';
import { writeSyntheticCheckpoints } from '../core/synthetic';
import { temporalTarget } from '../workers/temporal_config';
import { startWorker, stopWorker, tmpDir, uniq, waitFor } from './helpers/env';

const CHROMIUM = '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
const UI = process.env.MERGEFLOW_TEMPORAL_UI_URL;
if (!UI) throw new Error('MERGEFLOW_TEMPORAL_UI_URL is unset: run `mergeflow stack up` first');

const queue = uniq('webui');
const workflowId = uniq('webui-merge');
let worker: ChildProcess;
let connection: Connection;
let browser: BrowserContext;
const profile = tmpDir('chromium-profile');

before(async () => {
  worker = startWorker(queue, { MERGEFLOW_TF_BACKEND: 'cpu' });
  const t = temporalTarget();
  connection = await Connection.connect({ address: t.address });
  const client = new Client({ connection, namespace: t.namespace });
  const dir = tmpDir('webui');
  const ck = await writeSyntheticCheckpoints(path.join(dir, 'in'), { seed: 2, models: 2, dim: 16, layers: 1 });
  const config = validateConfig(
    { method: 'weight_average', base: ck.base, models: ck.models, output: path.join(dir, 'out.safetensors') },
    'test',
  );
  const h = await client.workflow.start('dataFreeMerge', { taskQueue: queue, workflowId, args: [{ config }] });
  const r = (await h.result()) as MergeResult;
  assert.equal(r.method, 'weight_average');
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  if (worker) await stopWorker(worker);
  await connection?.close();
  fs.rmSync(profile, { recursive: true, force: true });
});

/** The list's link to the run's page (the filter chips name the id too, so text alone is not a row). */
const runLink = (page: Page) => page.locator(`a[href*="/workflows/${workflowId}/"]`);

function listUrl(query: string): string {
  return `${UI}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
}

test('web UI: the workflow list finds the run by MergeMethod and MergeStatus', { timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(listUrl(`WorkflowId="${workflowId}" AND MergeMethod="weight_average" AND MergeStatus="completed"`));
  const row = runLink(page).first();
  await row.waitFor({ state: 'visible', timeout: 60_000 });
  assert.ok(await row.isVisible(), 'the run is listed');
  // the UI understood the query: it shows each search attribute as a filter
  const filters = await page.innerText('body');
  assert.match(filters, /MergeMethod\s*=\s*"weight_average"/);
  assert.match(filters, /MergeStatus\s*=\s*"completed"/);

  // the same search with another method lists nothing: the filter really uses the attribute
  const other = `WorkflowId="${workflowId}" AND MergeMethod="ties"`;
  await page.goto(listUrl(other));
  // the UI took the new query: its filter chips show the other method
  await waitFor(async () => /MergeMethod\s*=\s*"ties"/.test(await page.innerText('body')), 60_000, 'the ties filter');
  // what the page lists comes from its server's search (same origin; the UI's server proxies Temporal)
  const listed = await page.evaluate(async (q) => {
    const res = await fetch(`/api/v1/namespaces/default/workflows?query=${encodeURIComponent(q)}`);
    return (((await res.json()) as { executions?: unknown[] }).executions ?? []).length;
  }, other);
  assert.equal(listed, 0, 'the UI server finds no run under another method');
  assert.equal(await runLink(page).count(), 0, 'not listed under another method');
  await page.close();
});

test('web UI: its server reports the run with both search attributes', { timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${UI}/namespaces/default/workflows/${workflowId}`);
  await page.getByText(workflowId).first().waitFor({ state: 'visible', timeout: 60_000 });
  // the page's own API (same origin, the UI's server proxies Temporal): search attributes as JSON payloads
  const fields = (await page.evaluate(async (id) => {
    const res = await fetch(`/api/v1/namespaces/default/workflows/${encodeURIComponent(id)}`);
    const body = (await res.json()) as { workflowExecutionInfo: { searchAttributes: { indexedFields: unknown } } };
    return body.workflowExecutionInfo.searchAttributes.indexedFields;
  }, workflowId)) as Record<string, { data: string }>;
  const value = (k: string) => JSON.parse(Buffer.from(fields[k].data, 'base64').toString('utf8'));
  assert.equal(value('MergeMethod'), 'weight_average');
  assert.equal(value('MergeStatus'), 'completed');
  await page.close();
});
