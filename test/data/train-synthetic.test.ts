// End to end: DataLoader batches from the synthetic dataset train an engine MLP (plain SGD) to
// high test accuracy in two epochs, with one batch of input memory live at a time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backward } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/mode.js';
import { memory } from '../../src/core/ledger.js';
import { scope } from '../../src/core/scope.js';
import { DataLoader, syntheticShapes } from '../../src/data/index.js';
import { mlp } from '../../src/nn/models.js';
import { addInPlace, crossEntropy } from '../../src/ops/index.js';

test('an MLP trained on DataLoader batches of syntheticShapes reaches > 85 % test accuracy in 2 epochs', () => {
  const [train, test_] = syntheticShapes({ n: 3500, seed: 5 }).split(3000);
  const model = mlp([784, 64, 10], 1);
  const params = model.parameters();
  for (const p of params) p.requiresGrad = true;
  const loader = new DataLoader(train, { batchSize: 32, seed: 2, flatten: true });
  const activationBefore = memory().current.activation;
  for (let epoch = 0; epoch < 2; epoch++) {
    for (const { x, y } of loader.epoch(epoch)) {
      scope(() => {
        backward(crossEntropy(model.call(x), y));
        for (const p of params) {
          addInPlace(p, p.grad!, -0.1);
          p.grad!.dispose();
          p.grad = null;
        }
      });
      x.dispose();
      y.dispose();
    }
  }
  assert.equal(memory().current.activation, activationBefore, 'every batch and activation was freed');

  let correct = 0;
  noGrad(() => {
    for (const { x, y } of new DataLoader(test_, { batchSize: 250, shuffle: false, flatten: true }).epoch(0)) {
      scope(() => {
        const logits = model.call(x).values();
        const labels = y.values();
        for (let i = 0; i < labels.length; i++) {
          const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
          if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
        }
      });
      x.dispose();
      y.dispose();
    }
  });
  const accuracy = correct / test_.length;
  assert.ok(accuracy > 0.85, `test accuracy ${accuracy}`);
});
