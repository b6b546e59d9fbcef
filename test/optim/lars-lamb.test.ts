// LARS and LAMB against their closed forms, computed here in float64 from the papers' formulas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { LAMB, LARS } from '../../src/optim/optimizer.js';

function param(values: number[]): Tensor {
  const p = fromValues(Float32Array.from(values), [values.length], 'float32', 'parameter');
  p.requiresGrad = true;
  return p;
}
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
function close(actual: ArrayLike<number>, expected: number[], what: string): void {
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) <= 1e-5 * (1 + Math.abs(e)), `${what}[${i}]: ${actual[i]} vs ${e}`));
}

test('LARS: two momentum steps equal Algorithm 1 (local rate η‖w‖/‖g + βw‖)', () => {
  const w0 = [0.5, -1, 2], g = [[0.1, 0.2, -0.3], [-0.4, 0.05, 0.2]];
  const lr = 0.5, m = 0.9, beta = 0.01, eta = 0.02;
  const p = param(w0);
  const opt = new LARS([p], { lr, momentum: m, weightDecay: beta, trust: eta });
  let w = [...w0], v = [0, 0, 0];
  for (const gi of g) {
    p.grad = fromValues(Float32Array.from(gi), [3]);
    opt.step();
    const d = gi.map((x, i) => x + beta * w[i]!);
    const local = (eta * norm(w)) / norm(d);
    v = v.map((vi, i) => m * vi + lr * local * d[i]!);
    w = w.map((wi, i) => wi - v[i]!);
    close(p.data(), w, 'w');
    p.grad.dispose();
  }
  // A zero weight tensor takes the plain step (local rate 1).
  const z = param([0, 0]);
  const o2 = new LARS([z], { lr: 0.1, momentum: 0 });
  z.grad = fromValues(Float32Array.of(1, -2), [2]);
  o2.step();
  close(z.data(), [-0.1, 0.2], 'zero w');
});

test('LAMB: two steps equal the closed form (Adam direction + λw, trust ratio ‖w‖/‖r‖)', () => {
  const w0 = [1, -2, 0.5, 3], g = [[0.3, -0.1, 0.2, 0.05], [-0.2, 0.4, 0.1, -0.3]];
  const lr = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-6, wd = 0.1;
  const p = param(w0);
  const opt = new LAMB([p], { lr, beta1: b1, beta2: b2, eps, weightDecay: wd });
  let w = [...w0], m = [0, 0, 0, 0], v = [0, 0, 0, 0];
  g.forEach((gi, t) => {
    p.grad = fromValues(Float32Array.from(gi), [4]);
    opt.step();
    m = m.map((x, i) => b1 * x + (1 - b1) * gi[i]!);
    v = v.map((x, i) => b2 * x + (1 - b2) * gi[i]! ** 2);
    const r = m.map((x, i) => x / (1 - b1 ** (t + 1)) / (Math.sqrt(v[i]! / (1 - b2 ** (t + 1))) + eps) + wd * w[i]!);
    const ratio = norm(w) / norm(r);
    w = w.map((wi, i) => wi - lr * ratio * r[i]!);
    close(p.data(), w, `step ${t + 1}`);
    p.grad.dispose();
  });
  // First step without decay: r = sign(g) (up to ε), so the step length is exactly lr·‖w‖.
  const q = param([3, 4]);
  const o2 = new LAMB([q], { lr: 0.1, eps: 1e-12 });
  q.grad = fromValues(Float32Array.of(0.5, -0.001), [2]);
  o2.step();
  close(q.data(), [3 - 0.1 * 5 / Math.SQRT2, 4 + 0.1 * 5 / Math.SQRT2], 'sign step');
});
