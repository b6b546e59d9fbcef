// Designated real-data test: an MLP trained on the first 8,000 images of the official MNIST t10k
// file (../shared/data/mnist-t10k) and tested on the last 2,000, through loadMnist and DataLoader.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { loadMnist } from '../../src/data/index.js';
import { mlp } from '../../src/nn/models.js';
import { Adam } from '../../src/optim/optimizer.js';
import { fit } from '../../src/train/trainer.js';

const DIR = '../shared/data/mnist-t10k';

test('MLP 784-128-10 on MNIST t10k (train first 8,000, test last 2,000): > 90 % after 2 epochs', { skip: !existsSync(DIR) && `${DIR} not present` }, async () => {
  const train = await loadMnist(DIR, { split: 'train' });
  const test_ = await loadMnist(DIR, { split: 'test' });
  const model = mlp([784, 128, 10], 1);
  const report = fit(model, train, test_, { epochs: 2, batchSize: 64, seed: 1, optimizer: new Adam(model.parameters(), { lr: 1e-3 }) });
  assert.ok(report.testAccuracy! > 0.9, `test accuracy ${report.testAccuracy}`);
});
