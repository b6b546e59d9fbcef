import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/backward.js';
import { withSavedTensorHooks } from '../../src/autograd/saved.js';
import { arena } from '../../src/core/arena.js';
import { keep, scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { batchNorm, copyTo, mul, sum } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

const SHAPE = [8, 4, 6, 6];

function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed, 1);
  return Float32Array.from({ length: n }, () => r.normal());
}

/** An exact copy in a fresh storage (what a lossless codec's unpack returns). */
function copyOf(t: Tensor): Tensor {
  const c = Tensor.uninitialized(t.shape, t.dtype, 'workspace');
  copyTo(t, c);
  return c;
}

/**
 * Batch norm forward and backward, saves going through `hooks` (none: kept by reference);
 * returns the gradients and how many x-sized blocks backward allocated.
 */
function bnGrads(hooks: 'none' | 'exclusive' | 'shared') {
  return scope(() => {
    const n = SHAPE.reduce((a, b) => a * b, 1);
    const x = fromValues(values(n, 1), SHAPE);
    const gamma = fromValues(values(4, 2), [4]), beta = fromValues(values(4, 3), [4]);
    const w = fromValues(values(n, 4), SHAPE);
    for (const t of [x, gamma, beta]) t.requiresGrad = true;
    const extra: Tensor[] = [];
    const forward = () => sum(mul(batchNorm(x, gamma, beta, { training: true, momentum: 0.1, eps: 1e-5 }), w));
    const loss = hooks === 'none' ? forward() : withSavedTensorHooks({
      pack: (t: Tensor) => keep(copyOf(t)),
      unpack: (p: Tensor) => {
        const c = copyOf(p);
        if (hooks === 'shared') extra.push(keep(c.view())); // someone else still references the copy
        return c;
      },
      release: (p: Tensor) => p.dispose(),
    }, forward);
    const a = arena(), alloc = a.alloc;
    let xSized = 0;
    a.alloc = (bytes, lifetime) => {
      if (bytes === x.byteLength) xSized++;
      return alloc.call(a, bytes, lifetime);
    };
    try {
      backward(loss);
    } finally {
      a.alloc = alloc;
    }
    for (const t of extra) t.dispose();
    return { grads: [x, gamma, beta].map((t) => Array.from(t.grad!.values() as Float32Array)), xSized };
  });
}

test('donation: batch-norm backward writes dx over an exclusive unpacked copy of x, with bit-identical gradients', () => {
  const plain = bnGrads('none'), exclusive = bnGrads('exclusive'), shared = bnGrads('shared');
  assert.deepEqual(exclusive.grads, plain.grads);
  assert.deepEqual(shared.grads, plain.grads);
  // dx takes the exclusive copy's bytes; a copy someone else references is never overwritten.
  assert.equal(shared.xSized - exclusive.xSized, 1);
});
