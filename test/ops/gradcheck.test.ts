// Gradient checks generated from the op registry: every differentiable op, every sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allOps, runOp } from '../../src/ops/all.js';
import { mul, mulScalar, sum } from '../../src/ops/index.js';
import { grad } from '../../src/autograd/backward.js';
import { makeInput } from '../helpers.js';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import type { Tensor } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { Rng } from '../../src/util/rng.js';
import { registryWalk } from '../registry-walk.js';

const walk = registryWalk('gradcheck');

// Straight-through (pseudo-gradient) ops are excluded explicitly, never silently: see OpDef.straightThrough.
const differentiable = allOps().filter((op) => op.backward && op.samples && !op.straightThrough);

// Their pseudo-gradients are checked against closed forms in test/quant/quantizers.test.ts; here
// they still run forward and backward (so the ops their backward uses are visited too).
for (const op of allOps().filter((o) => o.straightThrough)) {
  op.samples!().forEach((sample, si) => {
    test(`straight-through ${op.name} ${sample.label ?? si}: backward gives finite gradients of the input shapes`, () => {
      assert.ok(op.backward, `${op.name} is straight-through but has no backward`);
      scope(() => {
        const rng = new Rng(23 + si, 3);
        const inputs = sample.inputs.map((spec) => (spec ? makeInput(spec, rng, 'float64') : null));
        const wrt = inputs.filter((t): t is Tensor => t !== null && t.dtype === 'float64');
        for (const t of wrt) t.requiresGrad = true;
        const outs = runOp(op, inputs, sample.attrs);
        const grads = grad(sum(outs[0]!), wrt, { allowUnused: true });
        grads.forEach((g, i) => {
          if (!g) return;
          assert.deepEqual(g.shape, wrt[i]!.shape);
          assert.ok([...g.toArray()].every(Number.isFinite), `${op.name}: non-finite pseudo-gradient`);
        });
      });
    });
  });
}

test('every differentiable op in the registry has gradcheck samples', () => {
  const missing = allOps().filter((op) => op.backward && !op.samples).map((op) => op.name);
  assert.deepEqual(missing, []);
});

for (const op of differentiable) {
  op.samples!().forEach((sample, si) => {
    test(`gradcheck ${op.name} ${sample.label ?? si}`, () => {
      scope(() => {
        const rng = new Rng(17 + si, 3);
        const inputs = sample.inputs.map((spec) => (spec ? makeInput(spec, rng, 'float64') : null));
        const wrt: Tensor[] = [];
        inputs.forEach((t, i) => {
          const diff = op.differentiable ? op.differentiable[i] : t?.dtype === 'float64';
          if (t && diff) {
            t.requiresGrad = true;
            wrt.push(t);
          }
        });
        const present = inputs.filter((t): t is Tensor => t !== null);
        const fn = (...xs: Tensor[]) => {
          let k = 0;
          const args = inputs.map((t) => (t ? xs[k++]! : null));
          return runOp(op, args, sample.attrs);
        };
        const r = gradcheck(fn, present, { rtol: op.gradcheckTolerance ?? 1e-4 });
        assert.ok(r.ok, `${op.name}: worst ${r.worst.toFixed(3)} at ${r.detail}`);
        assert.ok(wrt.length > 0);
      });
    });
  });
}

// Second order: the gradient of (first-order gradients · random weights) against finite
// differences of the first-order gradients. Ops marked `secondOrder: false` must refuse instead.
for (const op of differentiable) {
  const sample = op.samples!()[0]!;
  test(`second-order ${op.name}`, () => {
    scope(() => {
      const rng = new Rng(41, 5);
      const inputs = sample.inputs.map((spec) => (spec ? makeInput(spec, rng, 'float64') : null));
      const wrt = inputs.filter((t, i): t is Tensor => !!t && (op.differentiable ? op.differentiable[i] === true : t.dtype === 'float64'));
      for (const t of wrt) t.requiresGrad = true;
      const present = inputs.filter((t): t is Tensor => t !== null);
      const firstOrder = (...xs: Tensor[]) => {
        let k = 0;
        const args = inputs.map((t) => (t ? xs[k++]! : null));
        const outs = runOp(op, args, sample.attrs);
        const w = makeInput({ shape: [...outs[0]!.shape] }, new Rng(43, 5), 'float64');
        const xsWrt = xs.filter((x) => wrt.includes(x));
        return grad(sum(mul(outs[0]!, w)), xsWrt, { createGraph: true, allowUnused: true }).filter((g): g is Tensor => g !== null && g.requiresGrad);
      };
      if (op.secondOrder === false) {
        assert.throws(() => firstOrder(...present), new RegExp(`${op.name}: its backward uses .*not differentiable`));
        return;
      }
      const r = gradcheck((...xs) => {
        const gs = firstOrder(...xs);
        return gs.length ? gs : [sum(mul(xs[0]!, xs[0]!))].map((t) => mulScalar(t, 0));
      }, present, { rtol: op.gradcheckTolerance ?? 1e-4 });
      assert.ok(r.ok, `${op.name}: worst ${r.worst.toFixed(3)} at ${r.detail}`);
    });
  });
}

walk.done();
