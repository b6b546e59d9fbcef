import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, grad } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/mode.js';
import { liveSavedSlots, withSavedTensorHooks, type SaveInfo } from '../../src/autograd/saved.js';
import { scope } from '../../src/core/scope.js';
import { memory } from '../../src/core/ledger.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Linear, Sequential, ReLU } from '../../src/nn/index.js';
import { add, addInPlace, mul, powScalar, relu, sum, matmul, softplus, tanh } from '../../src/ops/index.js';

const leaf = (v: number[], shape = [v.length], dtype: 'float32' | 'float64' = 'float64'): Tensor => {
  const t = fromValues(v, shape, dtype);
  t.requiresGrad = true;
  return t;
};

test('backward accumulates gradients across calls until they are cleared', () => {
  scope(() => {
    const x = leaf([1, 2, 3]);
    backward(sum(mul(x, x)));
    assert.deepEqual(x.grad!.toArray(), [2, 4, 6]);
    backward(sum(mul(x, x)));
    assert.deepEqual(x.grad!.toArray(), [4, 8, 12]);
  });
});

test('a first gradient contribution that nothing else holds becomes .grad without a copy: the same values as grad(), booked as gradient memory', () => {
  scope(() => {
    const net = new Sequential(new Linear(5, 4), ReLU(), new Linear(4, 3));
    const x = fromValues(Float32Array.from({ length: 10 }, (_, i) => Math.sin(i)), [2, 5]);
    const params = net.parameters();
    const want = grad(sum(mul(net.call(x), net.call(x))), params).map((g) => g!.toArray());
    const before = memory().current.gradient;
    backward(sum(mul(net.call(x), net.call(x)))); // each weight gets two contributions: the first adopted, the second added
    params.forEach((p, i) => assert.deepEqual(p.grad!.toArray(), want[i], `parameter ${i}'s gradient`));
    const bytes = params.reduce((n, p) => n + p.byteLength, 0);
    assert.equal(memory().current.gradient - before, bytes, 'the parameters\' gradients are booked as gradient memory, exactly once');
    for (const p of params) p.grad!.dispose();
    assert.equal(memory().current.gradient, before, 'disposing them gives the bytes back');
  });
});

test('saved values are released right after their node runs, and a second backward explains retainGraph', () => {
  scope(() => {
    const x = leaf([1, -2, 3]);
    const y = sum(relu(mul(x, x)));
    assert.ok(liveSavedSlots() > 0);
    backward(y);
    assert.equal(liveSavedSlots(), 0);
    assert.throws(() => backward(y), /retainGraph/);
  });
});

test('retainGraph allows a second backward through the same graph', () => {
  scope(() => {
    const x = leaf([1, 2]);
    const y = sum(mul(x, x));
    backward(y, { retainGraph: true });
    backward(y);
    assert.deepEqual(x.grad!.toArray(), [4, 8]);
  });
});

test('modifying a saved tensor in place is an error at backward time, naming the op', () => {
  scope(() => {
    const x = leaf([1, 2, 3]);
    const h = mul(x, x);
    const y = sum(mul(h, h));
    noGrad(() => addInPlace(h, fromValues([1, 1, 1], [3], 'float64')));
    assert.throws(() => backward(y), /mul: a tensor \[3\] saved for backward as '.' was modified in place/);
  });
});

test('noGrad records nothing and saves nothing', () => {
  scope(() => {
    const x = leaf([1, 2, 3]);
    const y = noGrad(() => mul(x, x));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(liveSavedSlots(), 0);
  });
});

test('saved-tensor hooks see every save with its op, role and module path, and their unpack feeds backward', () => {
  scope(() => {
    const model = new Sequential(new Linear(3, 4), ReLU(), new Linear(4, 2));
    const seen: SaveInfo[] = [];
    let unpacked = 0;
    const x = fromValues([1, 2, 3, 4, 5, 6], [2, 3]);
    const loss = withSavedTensorHooks(
      {
        pack: (t, info) => {
          seen.push(info);
          return t.view();
        },
        unpack: (p: Tensor) => {
          unpacked++;
          return p.view();
        },
        release: (p: Tensor) => p.dispose(),
      },
      () => sum(model.call(x)),
    );
    const summary = seen.map((s) => `${s.module}:${s.op}.${s.name}/${s.role}${s.isParameter ? '/param' : ''}`);
    assert.deepEqual(summary, ['0:matmul.a/input', '0:matmul.b/input/param', '1:relu.mask/mask', '2:matmul.a/input', '2:matmul.b/input/param']);
    backward(loss);
    assert.equal(unpacked, 4, 'backward unpacks what it needs (the first matmul input is not needed: x does not require grad)');
    model.dispose();
  });
});

test('grad with createGraph gives higher derivatives (Hessian-vector products)', () => {
  scope(() => {
    const x = leaf([0.5, -1, 2]);
    const [g] = grad(sum(powScalar(x, 3)), [x], { createGraph: true });
    assert.deepEqual(g!.toArray().map((v) => +v.toFixed(12)), [0.75, 3, 12]);
    const v = fromValues([1, 1, 1], [3], 'float64');
    const [hv] = grad(sum(mul(g!, v)), [x]);
    assert.deepEqual(hv!.toArray().map((n) => +n.toFixed(12)), [3, -6, 12]);
    // Through a softplus MLP layer as SHEAR uses it: d2/dx2 sum(tanh(softplus(xW))) matches finite differences.
    const W = fromValues([0.3, -0.2, 0.5, 0.1, 0.7, -0.4], [3, 2], 'float64');
    const f = (z: Tensor) => sum(tanh(softplus(matmul(z, W))));
    const x2 = leaf([0.2, -0.1, 0.4], [1, 3]);
    const [g2] = grad(f(x2), [x2], { createGraph: true });
    const e0 = fromValues([1, 0, 0], [1, 3], 'float64');
    const [h0] = grad(sum(mul(g2!, e0)), [x2]);
    const fd = (i: number) => {
      const eps = 1e-5;
      const gAt = (d: number) => {
        const p = leaf([0.2 + (i === 0 ? 0 : 0), -0.1, 0.4].map((v, j) => (j === 0 ? v + d : v)), [1, 3]);
        return grad(f(p), [p])[0]!.toArray()[i]!;
      };
      return (gAt(eps) - gAt(-eps)) / (2 * eps);
    };
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(h0!.toArray()[i]! - fd(i)) < 1e-6, `H[0][${i}]`);
  });
});

test('gradients of a shared input add up (fan-out)', () => {
  scope(() => {
    const x = leaf([2]);
    const y = add(mul(x, x), mul(x, fromValues([3], [1], 'float64')));
    backward(sum(y));
    assert.deepEqual(x.grad!.toArray(), [7]);
  });
});
