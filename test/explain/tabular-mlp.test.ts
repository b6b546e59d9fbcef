import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { Explainer, absError } from '../../src/explain/index.js';
import { classOneHvp, classOneLogits, createTabularMlp, explainableMlp, mlpAccuracy, trainTabularMlp } from '../../src/explain/tabular-mlp.js';

test('engine MLP: Hessian-vector products match second differences of the forward pass', () => {
  const width = 6, mlp = createTabularMlp(width, { hidden: 16, seed: 3 });
  const rng = new Rng(4);
  const x = Float64Array.from({ length: width }, () => rng.normal());
  const dirs = Float64Array.from({ length: 3 * width }, () => rng.normal());
  const { products, source } = classOneHvp(mlp, x, dirs, 3);
  assert.equal(source, 'autograd double backward');
  const f = (z: Float64Array) => classOneLogits(mlp, z, 1)[0]!;
  const t = 0.05;
  for (let k = 0; k < 3; k++) {
    const u = Float64Array.from({ length: width }, () => rng.normal());
    const v = dirs.subarray(k * width, (k + 1) * width);
    const at = (a: number, b: number) => f(Float64Array.from(x, (xi, c) => xi + a * u[c]! + b * v[c]!));
    const fd = (at(t, t) - at(t, -t) - at(-t, t) + at(-t, -t)) / (4 * t * t); // uᵀ H v
    let uhv = 0;
    for (let c = 0; c < width; c++) uhv += u[c]! * products[k * width + c]!;
    assert.ok(Math.abs(uhv - fd) < 0.02 + 0.05 * Math.abs(fd), `direction ${k}: uᵀHv ${uhv} vs second difference ${fd}`);
  }
  // Both ways of computing the products agree (the gradient difference is O(h) accurate).
  const differences = classOneHvp(mlp, x, dirs, 3, 'gradient-difference');
  assert.equal(differences.source, 'forward differences of autograd gradients');
  for (let i = 0; i < products.length; i++) assert.ok(Math.abs(differences.products[i]! - products[i]!) < 0.02 + 0.05 * Math.abs(products[i]!), `entry ${i}`);
  assert.throws(() => classOneHvp(mlp, x.subarray(0, 3), dirs, 3), /Hessian point has 3 values, the model takes 6/);
});

test('engine MLP: trains on a separable synthetic task; SHEAR on it uses the Hessian and is close to exact', () => {
  const width = 5, rows = 600, rng = new Rng(11);
  const x = Float64Array.from({ length: rows * width }, () => rng.normal());
  const y = Uint8Array.from({ length: rows }, (_, r) => (x[r * width]! + x[r * width + 1]! * x[r * width + 2]! > 0 ? 1 : 0));
  const mlp = createTabularMlp(width, { hidden: 16, seed: 1 });
  const losses: number[] = [];
  trainTabularMlp(mlp, { x, y, rows }, { epochs: 15, batchSize: 32, lr: 1e-2, clipNorm: 1, onEpoch: (_e, l) => losses.push(l) });
  assert.ok(losses.at(-1)! < losses[0]! * 0.7, `loss ${losses[0]} -> ${losses.at(-1)}`);
  assert.ok(mlpAccuracy(mlp, { x, y, rows }) > 0.85);
  const explainer = new Explainer(explainableMlp(mlp), { reference: new Float64Array(width) });
  const row = x.subarray(0, width);
  const exact = explainer.explain(row, { method: 'exact' });
  const full = classOneLogits(mlp, row, 1)[0]! - classOneLogits(mlp, new Float64Array(width), 1)[0]!;
  assert.ok(Math.abs(exact.values.reduce((a, b) => a + b, 0) - full) < 1e-6, 'efficiency on the engine model');
  const shear = explainer.explain(row, { method: 'shear', budget: 16 });
  assert.match(shear.crossContribution!, /^hessian \((autograd double backward|forward differences of autograd gradients)\)$/);
  assert.ok(absError(shear.values, exact.values) < 0.05 * exact.values.reduce((a, b) => a + Math.abs(b), 0) + 1e-6);
  assert.throws(() => trainTabularMlp(mlp, { x, y, rows: rows + 1 }), /601 rows need 3005 values/);
});
