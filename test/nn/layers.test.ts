import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { BatchNorm, MultiheadAttention, TransformerBlock, createModel, describe, withParameterDType } from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';

const randn = (shape: number[], seed: number) => {
  const r = new Rng(seed);
  const t = fromValues(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()), shape, 'float64');
  t.requiresGrad = true;
  return t;
};

test('multi-head attention (causal and not) and a transformer block pass finite-difference gradient checks', () => {
  scope(() => {
    for (const causal of [false, true]) {
      const attn = withParameterDType('float64', () => new MultiheadAttention(8, 2, causal, new Rng(3)));
      const x = randn([2, 3, 8], 1);
      const r = gradcheck((z) => attn.call(z), [x, ...attn.parameters()]);
      assert.ok(r.ok, `attention causal=${causal}: ${r.detail}`);
    }
    const block = withParameterDType('float64', () => new TransformerBlock(8, 2, false, 0, new Rng(4)));
    const r = gradcheck((z) => block.call(z), [randn([2, 3, 8], 2), ...block.parameters()]);
    assert.ok(r.ok, `block: ${r.detail}`);
  });
});

test('batch norm keeps running statistics and switches to them in eval mode', () => {
  scope(() => {
    const bn = new BatchNorm(2, 0.5);
    const x = fromValues([1, 10, 3, 30], [2, 2]);
    bn.call(x);
    assert.deepEqual(bn.runningMean.toArray(), [1, 10]); // 0.5 * 0 + 0.5 * mean
    assert.deepEqual(bn.runningVar.toArray(), [1.5, 100.5]); // 0.5 * 1 + 0.5 * unbiased var
    bn.eval();
    const y = bn.call(fromValues([1, 10], [1, 2]));
    assert.ok(Math.abs(y.toArray()[0]! - 0) < 1e-3 && Math.abs(y.toArray()[1]! - 0) < 1e-3);
    bn.dispose();
  });
});

test('every named model builds, runs forward, and summary() reports its layers and saved bytes', () => {
  for (const [name, shape] of [['mlp', [1, 28, 28]], ['lenet', [1, 28, 28]], ['cnn', [1, 28, 28]], ['vgg-small', [3, 32, 32]], ['resnet20', [3, 32, 32]], ['transformer', [1, 28, 28]],
    // The CIFAR nets on MNIST-shaped (and odd-sized, many-channel) input.
    ['vgg-small', [1, 28, 28]], ['resnet20', [1, 28, 28]], ['resnet20', [5, 9, 13]], ['vgg-small', [2, 8, 11]]] as const) {
    const m = createModel(name, shape, 10, 0);
    const s = describe(m, [2, ...shape]);
    assert.deepEqual(s.layers[s.layers.length - 1]!.outputShape, [2, 10], name);
    assert.ok(s.savedBytes > 0 && s.parameters === m.parameterCount(), name);
    m.dispose();
  }
  assert.throws(() => createModel('lenet', [784], 10), /model 'lenet' needs image input/);
  assert.throws(() => createModel('nope', [1, 28, 28], 10), /unknown model 'nope'/);
  assert.throws(() => createModel('vgg-small', [1, 7, 32], 10), /model 'vgg-small' needs images of at least 8x8 \(three 2x2 max-pools\), got 7x32/);
});

void Tensor;
