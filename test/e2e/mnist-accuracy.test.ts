// The real-data accuracy bar (issue 3): MNIST t10k, first 8,000 images train, last 2,000 test,
// Adam 1e-3 with cosine decay, batch 64, 10 epochs, seed 1. These are the slowest tests in the suite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../../src/data/index.js';
import { useFastestBackend } from '../../src/backends/index.js';
import { createModel } from '../../src/nn/index.js';
import { Adam, cosineLr } from '../../src/optim/index.js';
import { fit } from '../../src/train/index.js';

const dir = fileURLToPath(new URL('../../../shared/data/mnist-t10k', import.meta.url));

for (const [model, bar] of [['lenet', 0.978], ['mlp', 0.965]] as const) {
  test(`${model} reaches >= ${(bar * 100).toFixed(1)}% test accuracy on MNIST (8k/2k split)`, async () => {
    useFastestBackend();
    const train = await loadMnist(dir, { split: 'train' });
    const testSet = await loadMnist(dir, { split: 'test' });
    assert.equal(train.length, 8000);
    assert.equal(testSet.length, 2000);
    const m = createModel(model, train.itemShape, 10, 1);
    const epochs = 10;
    const optimizer = new Adam(m.parameters(), { lr: 1e-3 });
    const r = fit(m, train, testSet, { epochs, batchSize: 64, optimizer, seed: 1, schedule: cosineLr(1e-3, epochs * Math.ceil(8000 / 64)) });
    console.log(`${model}: test accuracy ${(r.testAccuracy! * 100).toFixed(2)}%, ${r.samplesPerSec.toFixed(0)} samples/s, peak saved ${r.peakSavedBytes} B`);
    assert.ok(r.testAccuracy! >= bar, `${model}: ${r.testAccuracy} < ${bar}`);
    m.dispose();
    optimizer.dispose();
  });
}
