import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from '../../src/core/scope.js';
import { Tensor } from '../../src/core/tensor.js';
import { add, concat, conv2d, matmul, maxPool2d, reshape, batchNorm } from '../../src/ops/index.js';
import { Linear } from '../../src/nn/index.js';

const t = (...shape: number[]) => Tensor.empty(shape);

test('a wrong shape names the op and both shapes', () => {
  scope(() => {
    assert.throws(() => matmul(t(2, 3), t(4, 5)), /^ShapeError: matmul: inner dimensions differ: \[2, 3\] x \[4, 5\] \(3 vs 4\)/);
    assert.throws(() => add(t(2, 3), t(4)), /add: shapes \[2, 3\] and \[4\] cannot be broadcast together/);
    assert.throws(() => conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3)), /conv2d: input \[1, 3, 8, 8\] and weight \[4, 2, 3, 3\] do not agree/);
    assert.throws(() => conv2d(t(1, 3, 2, 2), t(4, 3, 3, 3)), /conv2d: window 3x3 .* does not fit input \[1, 3, 2, 2\]/);
    assert.throws(() => maxPool2d(t(2, 3), { kernel: 2 }), /maxpool2d: input must be NCHW \(rank 4\), got \[2, 3\]/);
    assert.throws(() => reshape(t(2, 3), [4, 2]), /reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/);
    assert.throws(() => concat([t(2, 3), t(3, 3)], 1), /concat: cannot concatenate \[2, 3\] float32 and \[3, 3\] float32 along axis 1/);
    assert.throws(() => batchNorm(t(4, 3), t(2), null, { training: true, momentum: 0.1, eps: 1e-5 }), /batchnorm: gamma must be \[3\]/);
    const layer = new Linear(10, 2);
    assert.throws(() => layer.call(t(4, 9)), /matmul: inner dimensions differ: \[4, 9\] x \[2, 10\]ᵀ/);
    layer.dispose();
  });
});

test('using a disposed tensor is a clear error', () => {
  const a = t(2);
  a.dispose();
  assert.throws(() => add(a, a), /add \(input 'a'\): tensor #\d+ \[2\] was disposed/);
});
