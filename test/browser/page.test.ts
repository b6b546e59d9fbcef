// slimgrad in headless Chromium (Debian's chromium driven by playwright-core): the demo page's
// worker trains, converts and infers, and every result is checked against the same code run here
// in Node. Skipped, with a line saying so, only where no Chromium is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadMnist, setThreads, quant } from '../../src/index.js';
import { buildBrowser, CHROMIUM, launchChromium, serve } from '../../scripts/browser.mjs';
import { predictDeployed, savedBytesByMode, syntheticSplits, trainModel, type TrainSpec } from '../../examples/browser/tasks.js';
import type { TrainerClient } from '../../examples/browser/client.js';
import type { Commands } from '../../examples/browser/protocol.js';

const LENET: TrainSpec = { model: 'lenet', act: 'off', epochs: 1, batchSize: 32, seed: 1, lr: 1e-3, trainItems: 2000, testItems: 500 };
const SCREENSHOT = join('build', 'test-output', 'browser-page.png');
const MNIST = join('..', 'shared', 'data', 'mnist-t10k');

type Page = Awaited<ReturnType<Awaited<ReturnType<typeof launchChromium>>['newPage']>>;

/** Calls the page's worker (window.trainer) from the test. */
function call<C extends keyof Commands>(page: Page, cmd: C, args: Commands[C]['args']): Promise<Commands[C]['result']> {
  return page.evaluate(
    ([c, a]) => (window as unknown as { trainer: TrainerClient }).trainer.call(c as C, a as Commands[C]['args']),
    [cmd, args] as const,
  ) as Promise<Commands[C]['result']>;
}

test('slimgrad in headless Chromium', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set SLIMGRAD_CHROMIUM): browser tests skipped` }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'slimgrad-page-'));
  const server = await serve(out);
  const browser = await launchChromium();
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const errors: string[] = [];
  try {
    await buildBrowser({ outdir: out });
    // The reference: the same code in Node, one thread.
    setThreads(1);
    const node = await trainModel(LENET, syntheticSplits(LENET));
    const nodeSaved = savedBytesByMode('lenet', ['off', 'int2'], 64, 1);
    const deployed = quant.convert(node.model, [1, 28, 28]);
    const nodePredictions = [...predictDeployed(deployed, syntheticSplits(LENET)[1])];
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));

    await t.test('cross-origin isolated page: wasm SIMD kernels on shared memory, Web Worker threads', async () => {
      await page.goto(`${origin}/`);
      const setup = await page.evaluate(() => (window as unknown as { ready: Promise<Commands['init']['result']> }).ready);
      assert.deepEqual({ ...setup, threads: undefined }, { backend: 'wasm', variant: 'simd-relaxed', threads: undefined, sharedMemory: true, quantKernels: true, crossOriginIsolated: true });
    });

    await t.test('LeNet-5, one epoch on the synthetic set: the accuracy and weights of the Node run, 1 and 2 workers bit-identical', async () => {
      assert.equal(await call(page, 'threads', { n: 1 }), 1);
      const one = await call(page, 'train', { spec: LENET });
      assert.equal(await call(page, 'threads', { n: 2 }), 2);
      const two = await call(page, 'train', { spec: LENET });
      assert.ok(node.result.testAccuracy > 0.8, `Node accuracy ${node.result.testAccuracy}`);
      assert.equal(one.testAccuracy, node.result.testAccuracy);
      assert.equal(one.weightsSha256, node.result.weightsSha256, 'page (1 thread) and Node weights differ');
      assert.equal(two.weightsSha256, one.weightsSha256, '1 and 2 threads give different weights');
      t.diagnostic(`LeNet-5 1 epoch: test accuracy ${one.testAccuracy} (Node ${node.result.testAccuracy}); page ${one.samplesPerSec.toFixed(0)} samples/s at 1 thread, ${two.samplesPerSec.toFixed(0)} at 2 (shared machine)`);
    });

    await t.test('int2 cuts saved-for-backward bytes by the factor it does in Node', async () => {
      const saved = await call(page, 'saved', { model: 'lenet', modes: ['off', 'int2'], batch: 64, seed: 1 });
      assert.deepEqual(saved, nodeSaved);
      assert.ok(saved.off! / saved.int2! > 4, `int2 factor ${saved.off! / saved.int2!}`);
    });

    await t.test('a .sgq written in Node predicts the same classes in the page', async () => {
      const predictions = await call(page, 'predict', { sgq: quant.encodeDeployed(deployed), spec: LENET });
      assert.deepEqual(predictions, nodePredictions);
      assert.ok(new Set(predictions).size >= 5, 'predictions are nearly constant: the comparison would be weak');
    });

    await t.test('converting in the page and classifying a drawn image', async () => {
      const converted = await call(page, 'convert', {});
      assert.equal(converted.packedAccuracy, accuracy(nodePredictions, syntheticSplits(LENET)[1].y));
      assert.equal(converted.agreement, 1);
      const scores = await call(page, 'classify', { pixels: syntheticSplits(LENET)[1].values(0, 1) });
      assert.equal(scores.length, 10);
      mkdirSync(join('build', 'test-output'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      t.diagnostic(`screenshot: ${SCREENSHOT}`);
    });

    await t.test('MNIST IDX files picked in the page (gzipped, inflated by DecompressionStream) train to the weights of loadMnist in Node', async () => {
      const spec: TrainSpec = { ...LENET, model: 'mlp', trainItems: 1000, testItems: 200 };
      const [train, rest] = (await loadMnist(MNIST, { split: 'all' })).split(spec.trainItems);
      const reference = await trainModel(spec, [train, rest.subset(0, spec.testItems)]);
      await page.setInputFiles('#files', [join(MNIST, 't10k-images-idx3-ubyte.gz'), join(MNIST, 't10k-labels-idx1-ubyte.gz')]);
      const r = await page.evaluate((spec) => {
        const [labels, images] = Array.from((document.getElementById('files') as HTMLInputElement).files!).sort((a, b) => a.size - b.size);
        return (window as unknown as { trainer: TrainerClient }).trainer.call('train', { spec, mnist: { images: images!, labels: labels!, trainItems: spec.trainItems, testItems: spec.testItems } });
      }, spec);
      assert.deepEqual([r.trainItems, r.testItems, r.classes[7]], [1000, 200, '7']);
      assert.equal(r.weightsSha256, reference.result.weightsSha256);
      assert.equal(r.testAccuracy, reference.result.testAccuracy);
    });

    await t.test('a page that is not cross-origin isolated runs one thread on unshared memory, same weights', async () => {
      const plain = await browser.newPage();
      await plain.goto(`${origin}/plain/`);
      const setup = await plain.evaluate(() => (window as unknown as { ready: Promise<Commands['init']['result']> }).ready);
      assert.deepEqual([setup.variant, setup.threads, setup.sharedMemory, setup.crossOriginIsolated], ['simd-unshared-relaxed', 1, false, false]);
      const r = await call(plain, 'train', { spec: LENET });
      assert.equal(r.weightsSha256, node.result.weightsSha256);
    });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
    rmSync(out, { recursive: true, force: true });
  }
});

/** Fraction of predictions equal to the labels. */
function accuracy(predictions: number[], labels: Int32Array): number {
  let correct = 0;
  predictions.forEach((p, i) => (correct += p === labels[i] ? 1 : 0));
  return correct / predictions.length;
}
