// Gradient checks generated from the op registry: every differentiable op, every sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allOps, runOp, type InputSpec } from '../../src/ops/index.js';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { Rng } from '../../src/util/rng.js';
import '../../src/quant/ops.js'; // registers the straight-through quantizer ops

export function makeInput(spec: InputSpec, rng: Rng, dtype: 'float32' | 'float64'): Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.values) return fromValues(spec.values(rng), spec.shape, spec.dtype ?? dtype);
  const vals = Array.from({ length: n }, () => {
    let v = rng.normal();
    if (spec.positive) v = Math.abs(v) + 0.5;
    if (spec.awayFromZero && Math.abs(v) < spec.awayFromZero) v = v < 0 ? v - spec.awayFromZero : v + spec.awayFromZero;
    return v;
  });
  return fromValues(vals, spec.shape, spec.dtype ?? dtype);
}

// Straight-through (pseudo-gradient) ops are excluded explicitly, never silently: see OpDef.straightThrough.
const differentiable = allOps().filter((op) => op.backward && op.samples && !op.straightThrough);

test('straight-through ops are excluded from finite differences by their flag only', () => {
  for (const op of allOps().filter((o) => o.straightThrough)) {
    assert.ok(op.backward, `${op.name} is straight-through but has no backward`);
  }
});

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
