import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Adam, AdamW, SGD, clipGradNorm, cosineLr, stepLr, warmup, type Optimizer } from '../../src/optim/index.js';
import { memory } from '../../src/core/ledger.js';

function param(v: number[]): Tensor {
  const t = fromValues(v, [v.length], 'float64', 'parameter');
  t.requiresGrad = true;
  return t;
}
const setGrad = (p: Tensor, g: number[]) => {
  p.grad?.dispose();
  p.grad = fromValues(g, [g.length], 'float64', 'gradient');
};
const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-12, `${a} vs ${b}`));

test('SGD with momentum, Nesterov and weight decay follows the PyTorch update rule', () => {
  const p = param([1, -2]);
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 });
  let w = [1, -2], buf = [0, 0];
  for (let step = 0; step < 3; step++) {
    const g = [0.5 * (step + 1), -0.25];
    setGrad(p, g);
    opt.step();
    const d = g.map((gi, i) => gi + 0.01 * w[i]!);
    buf = step === 0 ? d : buf.map((b, i) => 0.9 * b + d[i]!);
    w = w.map((wi, i) => wi - 0.1 * (d[i]! + 0.9 * buf[i]!));
  }
  close(p.toArray(), w);
});

test('Adam and AdamW match their closed forms; optimizer state is booked as optimizer memory', () => {
  for (const [Cls, decoupled] of [[Adam, false], [AdamW, true]] as const) {
    const p = param([0.5]);
    const before = memory().current.optimizer;
    const opt: Optimizer = new Cls([p], { lr: 0.01, weightDecay: 0.1 });
    let w = 0.5, m = 0, v = 0;
    for (let t = 1; t <= 4; t++) {
      const g0 = 0.3 - 0.1 * t;
      setGrad(p, [g0]);
      opt.step();
      let g = g0;
      if (!decoupled) g += 0.1 * w;
      else w -= 0.01 * 0.1 * w;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      w -= (0.01 * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
    }
    close(p.toArray(), [w]);
    assert.equal(memory().current.optimizer - before, 2 * 8);
    opt.dispose();
  }
});

test('gradient clipping and learning-rate schedules', () => {
  const p = param([0, 0]);
  setGrad(p, [3, 4]);
  assert.equal(clipGradNorm([p], 1), 5);
  close(p.grad!.toArray().map((v) => +v.toFixed(6)), [0.6, 0.8]);
  const s = stepLr(1, 10, 0.5);
  assert.deepEqual([s.at(0), s.at(9), s.at(10), s.at(25)], [1, 1, 0.5, 0.25]);
  const c = cosineLr(1, 100);
  assert.equal(c.at(0), 1);
  assert.ok(Math.abs(c.at(50) - 0.5) < 1e-12 && c.at(100) < 1e-12);
  const w = warmup(c, 10);
  assert.equal(w.at(0), 0.1);
  assert.equal(w.at(10), 1);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /nesterov needs momentum/);
});
