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
import { deployPtq, layerOutputErrors, ptq, ptqBytes, quantizableLayers, simulate } from '../../src/quant/ptq/ptq.js';
import { quantizeActivation } from '../../src/quant/ptq/activation.js';
import { Rng } from '../../src/util/rng.js';

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

test('AQuant border tables: per-level table with equal levels = one border per channel; all-½ table = round to nearest; bad table sizes named', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 8 }), fc.boolean(), fc.integer({ min: 0, max: 1000 }), (c, bits, signed, seed) => {
    const rng = new Rng(seed, 7), g = gridFor(bits, signed), levels = g.hi - g.lo, shape = [2, c, 3, 2];
    const x = Float32Array.from({ length: 2 * c * 6 }, () => (signed ? rng.normal() : Math.abs(rng.normal())) * g.hi * 0.4);
    const step = 0.4, b = Float32Array.from({ length: c }, () => 0.05 + 0.9 * rng.uniform());
    const perChannel = quantizeActivation(x, shape, { step, lo: g.lo, hi: g.hi, border: b });
    const table = Float32Array.from({ length: c * levels }, (_, i) => b[Math.floor(i / levels)]!);
    assert.deepEqual(quantizeActivation(x, shape, { step, lo: g.lo, hi: g.hi, border: table }), perChannel);
    // The reference: round up iff the fraction reaches the channel's border.
    perChannel.forEach((q, i) => {
      const v = x[i]! / step, f = Math.floor(v);
      assert.equal(q, Math.min(g.hi, Math.max(g.lo, f + (v - f >= b[Math.floor(i / 6) % c]! ? 1 : 0))));
    });
    if (!signed) assert.deepEqual(quantizeActivation(x, shape, { step, lo: g.lo, hi: g.hi, border: new Float32Array(c * levels).fill(0.5) }), quantizeActivation(x, shape, { step, lo: g.lo, hi: g.hi }));
  }), { numRuns: 40 });
  assert.throws(() => quantizeActivation(new Float32Array(8), [1, 2, 2, 2], { step: 1, lo: 0, hi: 15, border: new Float32Array(7) }), /7 rounding borders for 2 channels/);
});

test('AQuant W4A4 on the PyTorch CNN: borders are per-level tables, each kept only where it lowers the layer output error on the calibration items; simulation = deployed .sgq; AdaRound weights under the default schedule', async () => {
  const { model, inputShape } = importOnnx(torchBytes);
  const calib = await calibItems(32), shape = [32, 1, 28, 28];
  const r = ptq(model, calib, shape, { method: 'aquant', wBits: 4, aBits: 4, iters: 30, seed: 2 });
  const layers = quantizableLayers(model), borders = r.layers.map((l) => l.act.border);
  assert.ok(borders.some(Boolean), 'no layer kept its learned borders');
  const errors = layerOutputErrors(model, r, calib, shape).map((e) => e.mse);
  r.layers.forEach((l, i) => {
    const b = borders[i];
    if (!b) return;
    assert.equal(b.length, layers[i]!.weight.shape[1]! * (l.act.hi - l.act.lo), `layer ${i}: a border per input channel and level`);
    delete l.act.border;
    const without = layerOutputErrors(model, r, calib, shape)[i]!.mse;
    l.act.border = b;
    assert.ok(errors[i]! < without, `layer ${i}: output error ${errors[i]} with its borders, ${without} without`);
  });
  const x = (await test500()).x.subarray(0, 64 * 784);
  const restore = simulate(model, r);
  const sim = logits(model, x);
  restore();
  const dep = runDeployed(decodeDeployed(encodeDeployed(deployPtq(model, r, inputShape))), x, [64, 1, 28, 28]).data;
  let worst = 0;
  for (let i = 0; i < sim.length; i++) worst = Math.max(worst, Math.abs(sim[i]! - dep[i]!) / (1 + Math.abs(sim[i]!)));
  assert.ok(worst < 1e-4, `simulated and deployed logits differ by ${worst}`);
  // A table of a size that fits neither layout is refused when the file is written.
  const bad = deployPtq(model, r, inputShape), stage = bad.stages.find((s) => 'inputBorder' in s && s.inputBorder) as { inputBorder: Float32Array };
  stage.inputBorder = stage.inputBorder.subarray(1);
  assert.throws(() => encodeDeployed(bad), /inputBorder/);
  // The default (sequential) schedule rounds the weights exactly as AdaRound does, then learns the
  // borders with them fixed: the first layer (same input in both) has AdaRound's codes; learned
  // jointly with the borders, the weights of some layer differ.
  const ada = ptq(model, calib, shape, { method: 'adaround', wBits: 4, aBits: 4, iters: 30, seed: 2 });
  assert.deepEqual(r.layers[0]!.codes, ada.layers[0]!.codes);
  const joint = ptq(model, calib, shape, { method: 'aquant', wBits: 4, aBits: 4, iters: 30, seed: 2, aquantSchedule: 'joint' });
  assert.ok(joint.layers.some((l, i) => l.codes.some((q, k) => q !== r.layers[i]!.codes[k])), 'the joint schedule learned the same weights');
  assert.throws(() => ptq(model, calib, shape, { method: 'aquant', aquantSchedule: 'both' as 'joint' }), /aquantSchedule must be 'sequential' or 'joint'/);
});
