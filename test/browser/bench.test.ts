// `slimgrad bench browser`: the JSON contract of issue 18 and the ratios it reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runJson } from '../helpers.js';
import { CHROMIUM } from '../../scripts/browser.mjs';
import * as bench from '../../bench/browser.js';
import type { BrowserTrainRow } from '../../bench/browser.js';

test('browserRatios: page over Node at equal threads, page best over tfjs, 2 threads over 1 (page and Node)', () => {
  const row = (engine: BrowserTrainRow['engine'], threads: number, samplesPerSec: number | null): BrowserTrainRow => ({ model: 'lenet', engine, threads, samplesPerSec, error: samplesPerSec === null ? 'x' : null });
  const ratios = bench.browserRatios([
    row('slimgrad-node', 1, 100), row('slimgrad-browser', 1, 90), row('slimgrad-node', 2, 200), row('slimgrad-browser', 2, 160),
    row('tfjs-cpu', 1, 2), row('tfjs-wasm', 1, null),
  ]);
  const value = (ratio: string, threads: number | null = null) => ratios.find((r) => r.ratio === ratio && r.threads === threads)?.value;
  assert.equal(value('slimgrad-browser / slimgrad-node', 1), 0.9);
  assert.equal(value('slimgrad-browser / slimgrad-node', 2), 0.8);
  assert.equal(value('slimgrad-browser (best) / tfjs-cpu'), 80);
  assert.equal(value('slimgrad-browser (best) / tfjs-wasm'), null);
  assert.equal(value('slimgrad-browser 2 threads / 1'), 160 / 90);
  assert.equal(value('slimgrad-node 2 threads / 1'), 2);
});

test('bench browser --json ends with the train rows of every engine', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: skipped` }, async () => {
  const { code, json } = await runJson(bench, ['--json', '--seconds', '0.05', '--rounds', '1', '--models', 'mlp', '--threads', '1']);
  assert.equal(code, 0);
  assert.equal(json.suite, 'browser');
  assert.deepEqual(json.train.map((r: BrowserTrainRow) => r.engine).sort(), ['slimgrad-browser', 'slimgrad-node', 'tfjs-cpu', 'tfjs-wasm']);
  for (const r of json.train as BrowserTrainRow[]) {
    assert.deepEqual(Object.keys(r).sort(), ['engine', 'error', 'model', 'samplesPerSec', 'threads']);
    assert.ok(r.samplesPerSec! > 0 && r.error === null, `${r.engine}: ${r.error}`);
  }
});
