import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { Explainer, absError, playerDirections } from '../../src/explain/index.js';
import { classOneHvp, classOneLogits, classOneThirdOrder, createTabularMlp, explainableMlp, mlpAccuracy, trainTabularMlp } from '../../src/explain/tabular-mlp.js';

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

test('engine MLP: analytic third derivatives match differences of autograd Hessian-vector products; shear-cv uses them', () => {
  const width = 6, mlp = createTabularMlp(width, { hidden: 16, seed: 5 });
  const rng = new Rng(8);
  const x = Float64Array.from({ length: width }, () => rng.normal());
  const r = Float64Array.from({ length: width }, () => 0.5 * rng.normal());
  // Players: columns 0, 1, [2, 4) (a block), 4, 5.
  const groups = [{ name: 'a', start: 0, end: 1 }, { name: 'b', start: 1, end: 2 }, { name: 'c', start: 2, end: 4 }, { name: 'd', start: 4, end: 5 }, { name: 'e', start: 5, end: 6 }];
  const dirs = playerDirections(x, r, groups);
  const mid = x.map((v, c) => (v + r[c]!) / 2);
  const third = classOneThirdOrder(mlp, mid, dirs, 5);
  assert.equal(third.length, 10);
  // Independent path: D³f[i,j,k] = d/dt (Δ_iᵀ H(mid + t Δ_k) Δ_j) by central differences of double-backward products.
  const t = 0.02;
  const uhv = (point: Float64Array, i: number, j: number) => {
    const hv = classOneHvp(mlp, point, dirs.subarray(j * width, (j + 1) * width), 1, 'double-backward').products;
    let s = 0;
    for (let c = 0; c < width; c++) s += dirs[i * width + c]! * hv[c]!;
    return s;
  };
  let idx = 0, scale = 0;
  for (const v of third) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 1e-3, 'the network has third-order interactions (the test can fail)');
  for (let i = 0; i < 5; i++) for (let j = i + 1; j < 5; j++) for (let k = j + 1; k < 5; k++, idx++) {
    const shift = (sign: number) => Float64Array.from(mid, (v, c) => v + sign * t * dirs[k * width + c]!);
    const fd = (uhv(shift(1), i, j) - uhv(shift(-1), i, j)) / (2 * t);
    assert.ok(Math.abs(third[idx]! - fd) < 0.03 * scale, `triple ${i},${j},${k}: analytic ${third[idx]} vs difference ${fd}`);
  }
  assert.throws(() => classOneThirdOrder(mlp, mid.subarray(0, 2), dirs, 5), /third-order point has 2 values, the model takes 6/);
  // shear-cv on the engine MLP: reports its interactions and is more accurate than antithetic on the same orders.
  const explainer = new Explainer(explainableMlp(mlp), { reference: r, groups });
  const exact = explainer.explain(x, { method: 'exact' });
  let cvErr = 0, antiErr = 0;
  for (let seed = 0; seed < 10; seed++) {
    const cv = explainer.explain(x, { method: 'shear-cv', budget: 4, seed });
    assert.equal(cv.crossContribution, 'third-order (analytic third derivatives of the MLP, at the midpoint)');
    cvErr += absError(cv.values, exact.values);
    antiErr += absError(explainer.explain(x, { method: 'antithetic', budget: 4, seed }).values, exact.values);
  }
  assert.ok(cvErr < antiErr, `shear-cv error ${cvErr} not below antithetic ${antiErr}`);
});
