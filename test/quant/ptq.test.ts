// Post-training quantization: observers (properties), RTN W8A8 on the PyTorch-trained CNN
// (simulation vs deployed int8 runtime vs float), AdaRound vs round-to-nearest, file round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import type { Module } from '../../src/nn/module.js';
import { importOnnx } from '../../src/io/onnx/import.js';
import { loadDataset } from '../../src/data/catalog.js';
import { decodeDeployed, encodeDeployed } from '../../src/io/deployed-format.js';
import { runDeployed } from '../../src/quant/runtime.js';
import { gridFor, observeRange, OBSERVERS, quantError } from '../../src/quant/ptq/observers.js';
import { deployPtq, ptq, ptqBytes, simulate } from '../../src/quant/ptq/ptq.js';

useFastestBackend();
const torchBytes = readFileSync(new URL('../fixtures/onnx/torch_cnn.onnx', import.meta.url));
const test500 = async () => {
  const d = await loadDataset('mnist', { split: 'test', dataDir: '../shared/data/mnist-t10k' });
  return { x: d.values(0, 500), y: d.y.subarray(0, 500) };
};
const calibItems = async (n: number) => (await loadDataset('mnist', { split: 'train', dataDir: '../shared/data/mnist-t10k' })).values(0, n);
const logits = (m: Module, x: Float32Array) => noGrad(() => scope(() => m.call(fromValues(x, [x.length / 784, 1, 28, 28])).values() as Float32Array));
const argmaxes = (y: ArrayLike<number>) => Array.from({ length: y.length / 10 }, (_, i) => {
  const row = Array.from(y).slice(i * 10, i * 10 + 10);
  return row.indexOf(Math.max(...row));
});
const accuracy = (pred: number[], y: ArrayLike<number>) => pred.filter((p, i) => p === y[i]).length / pred.length;

test('observers: ranges within max|x|, MSE never worse than min-max, per-channel ranges', () => {
  fc.assert(fc.property(fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 4, maxLength: 200 }), fc.integer({ min: 2, max: 8 }), (vals, bits) => {
    const x = Float32Array.from(vals), max = Math.max(...vals.map(Math.abs));
    const g = gridFor(bits, true);
    for (const kind of OBSERVERS) {
      const r = observeRange(x, [x.length], { kind, bits, signed: true })[0]!;
      assert.ok(r >= 0 && r <= max * (1 + 1e-6), `${kind}: ${r} outside [0, ${max}]`);
    }
    if (max > 0) {
      const mse = observeRange(x, [x.length], { kind: 'mse', bits, signed: true })[0]!;
      assert.ok(quantError(x, mse / g.hi, g) <= quantError(x, max / g.hi, g) * (1 + 1e-9));
    }
  }), { numRuns: 20 });
  const w = Float32Array.from([1, -2, 0.5, 0.25, 8, -1]);
  assert.deepEqual(Array.from(observeRange(w, [3, 2], { kind: 'minmax', bits: 8, perChannel: true })), [2, 0.5, 8]);
  assert.throws(() => gridFor(9, true), /2\.\.8/);
});

test('RTN W8A8 per-channel: simulation = deployed int8 runtime, accuracy within 1 pt of float, .sgq round trip', async () => {
  const { model, inputShape } = importOnnx(torchBytes);
  const { x, y } = await test500();
  const r = ptq(model, await calibItems(64), [64, 1, 28, 28], { method: 'rtn', wBits: 8, aBits: 8 });
  const floatAcc = accuracy(argmaxes(logits(model, x)), y);
  const restore = simulate(model, r);
  const sim = logits(model, x);
  restore();
  const deployed = decodeDeployed(encodeDeployed(deployPtq(model, r, inputShape)));
  const dep = runDeployed(deployed, x, [500, 1, 28, 28]).data;
  let worst = 0;
  for (let i = 0; i < sim.length; i++) worst = Math.max(worst, Math.abs(sim[i]! - dep[i]!) / (1 + Math.abs(sim[i]!)));
  assert.ok(worst < 1e-4, `simulated and deployed logits differ by ${worst}`);
  const acc = accuracy(argmaxes(dep), y);
  assert.ok(acc >= floatAcc - 0.01, `W8A8 ${acc} vs float ${floatAcc}`);
  // restore() gave back the float model.
  assert.equal(accuracy(argmaxes(logits(model, x)), y), floatAcc);
  assert.ok(deployed.stages.every((s) => (s.op !== 'conv' && s.op !== 'dense') || s.kernel === 'int8'));
  const w4 = ptq(model, await calibItems(16), [16, 1, 28, 28], { wBits: 4, weightObserver: 'minmax', actObserver: 'minmax' });
  assert.ok(ptqBytes(model, w4) < ptqBytes(model, r) * 0.55, 'packed 4-bit codes take about half the bytes of 8-bit ones');
});

test('AdaRound reconstructs the float outputs better than round-to-nearest at 3-bit weights', async () => {
  const { model } = importOnnx(torchBytes);
  const calib = await calibItems(32);
  const ref = logits(model, calib);
  const err = (method: 'rtn' | 'adaround') => {
    const restore = simulate(model, ptq(model, calib, [32, 1, 28, 28], { method, wBits: 3, aBits: 8, iters: 80, seed: 1 }));
    const y = logits(model, calib);
    restore();
    return y.reduce((s, v, i) => s + (v - ref[i]!) ** 2, 0);
  };
  const rtn = err('rtn'), ada = err('adaround');
  assert.ok(ada < rtn, `AdaRound output error ${ada} not below RTN's ${rtn}`);
});
