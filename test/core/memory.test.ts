import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/backward.js';
import { memory } from '../../src/core/ledger.js';
import { keep, scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { syntheticShapes } from '../../src/data/index.js';
import { Linear, createModel } from '../../src/nn/index.js';
import { crossEntropy, mul, relu, sum } from '../../src/ops/index.js';
import { Adam } from '../../src/optim/index.js';
import { fit } from '../../src/train/index.js';

test('a Linear layer on batch B saves exactly B*in*4 bytes (its input; the weight is a parameter)', () => {
  for (const [B, inF, outF] of [[1, 3, 2], [32, 100, 10], [7, 13, 5]] as const) {
    scope(() => {
      const layer = new Linear(inF, outF);
      const x = Tensor.empty([B, inF]);
      const before = memory().current.saved;
      const y = layer.call(x);
      assert.equal(memory().current.saved - before, B * inF * 4);
      assert.equal(memory().savedByOp.matmul, B * inF * 4);
      y.dispose();
      layer.dispose();
      assert.equal(memory().current.saved, before, 'disposing the output frees the graph and its saved values');
    });
  }
});

test('a storage saved by two ops is counted once; relu saves a 1-byte mask, not its float output', () => {
  scope(() => {
    const x = fromValues([1, -2, 3, -4], [2, 2]);
    x.requiresGrad = true;
    const before = memory().current.saved;
    const h = relu(x); // mask: 4 bytes
    const y = sum(mul(h, h)); // saves h (as a and b): 16 bytes, once
    assert.equal(memory().current.saved - before, 4 + 16);
    backward(y);
    assert.equal(memory().current.saved, before);
  });
});

test('100 training steps leave no leaked bytes: live memory returns to its baseline', () => {
  const data = syntheticShapes({ n: 256, seed: 3 });
  const model = createModel('lenet', data.itemShape, 10, 1);
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  // One step first so that the optimizer state exists (it is persistent, not a leak).
  fit(model, data.subset(0, 4), null, { epochs: 1, batchSize: 4, optimizer: opt });
  const base = memory();
  fit(model, data, null, { epochs: 2, batchSize: 5, optimizer: opt }); // 2 * ceil(256/5) = 104 steps
  const after = memory();
  assert.equal(after.totalBytes, base.totalBytes);
  assert.equal(after.storages, base.storages);
  assert.equal(after.current.saved, 0);
  assert.equal(after.current.activation, base.current.activation);
  model.dispose();
  opt.dispose();
});

test('scope frees everything but its result; peaks are tracked per category', () => {
  const before = memory().totalBytes;
  const kept = scope(() => {
    const a = Tensor.empty([100]);
    Tensor.empty([1000]);
    return a;
  });
  assert.equal(memory().totalBytes - before, 400);
  kept.dispose();
  assert.equal(memory().totalBytes, before);
  assert.ok(memory().peak.activation >= 4400);
});

test('a tensor disposed inside a scope leaves it at once; returned tensors move to the enclosing scope, kept ones to none', () => {
  const before = memory().totalBytes;
  let outerHeld = 0;
  scope(() => {
    const escaped = scope(() => {
      const base = Tensor.empty([64]);
      for (let i = 0; i < 1000; i++) {
        const v = base.view([8], undefined, i % 8);
        assert.equal(v.ownerScope?.has(v), true);
        v.dispose();
        // The scope holds no reference to a dead view (it would keep it alive to the end of a training step).
        assert.equal(v.ownerScope, null);
      }
      assert.equal(base.ownerScope?.size, 1);
      return base;
    });
    assert.equal(escaped.ownerScope?.has(escaped), true, 'the returned tensor belongs to the enclosing scope');
    outerHeld = escaped.ownerScope!.size;
    const kept = keep(Tensor.empty([4]));
    assert.equal(kept.ownerScope, null);
    kept.dispose();
  });
  assert.equal(outerHeld, 1);
  assert.equal(memory().totalBytes, before, 'the enclosing scope disposed the escaped tensor');
});

test('cross-entropy rejects labels outside the class range, naming the row', () => {
  scope(() => {
    const logits = Tensor.empty([2, 3]);
    const labels = fromValues([0, 3], [2], 'int32');
    assert.throws(() => crossEntropy(logits, labels), /cross_entropy: label 3 at row 1 is outside \[0, 3\)/);
  });
});
