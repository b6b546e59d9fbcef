// SmartDeal: the factors are what they claim (power-of-two, vector-sparse coefficients times a float
// basis), the deployed stage stores exactly them, and inference on the factors (z = B·x per segment,
// then shift-and-add) matches the float reconstruction Ce·B and the in-process model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import {
  applyQuantPreset, coeffValue, convert, decodeDeployed, decompose, encodeDeployed, packFactors, payloadBytes, reconstruct, runDeployed, runPacked,
  smartdealFactors, smartdealGemm, storageBits, summary, unpackFactors, useQuantKernels, QuantWasmKernels, type MatStage,
} from '../../src/quant/index.js';
import { loadQuantKernelsFromBuild } from '../../src/io/quant.js';

const rng = new Rng(5, 3);
const gaussian = (n: number) => Float32Array.from({ length: n }, () => rng.normal() * 0.1);

test('decompose: whole coefficient rows are zero (the smallest segments), non-zeros are ±2^e over 7 exponents, reconstruct = Ce·B', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 6 }), fc.double({ min: 0, max: 0.9, noNaN: true }), (outC, K, S, sparsity) => {
    const r = 1 + (outC % S), w = gaussian(outC * K);
    const f = decompose(w, outC, K, { segment: S, rank: r, sparsity });
    const G = Math.ceil(K / S), M = outC * G;
    assert.equal(f.rowMask.reduce((a, b) => a + b, 0), M - Math.floor(sparsity * M));
    // A pruned segment is never larger than a kept one.
    const norm = (i: number) => Array.from({ length: S }, (_, j) => (i % G) * S + j < K ? w[Math.floor(i / G) * K + (i % G) * S + j]! ** 2 : 0).reduce((a, b) => a + b, 0);
    const pruned = [...f.rowMask.keys()].filter((i) => !f.rowMask[i]), kept = [...f.rowMask.keys()].filter((i) => f.rowMask[i]);
    if (pruned.length && kept.length) assert.ok(Math.max(...pruned.map(norm)) <= Math.min(...kept.map(norm)));
    for (let i = 0; i < M * r; i++) {
      const v = coeffValue(f.codes[i]!, f.emax);
      if (!f.rowMask[Math.floor(i / r)]) assert.equal(f.codes[i], 0);
      if (v !== 0) {
        const e = Math.log2(Math.abs(v));
        assert.ok(Number.isInteger(e) && e <= f.emax && e >= f.emax - 6, `coefficient ${v}`);
      }
    }
    // Ce·B, written out independently.
    const rec = reconstruct(f);
    for (let o = 0; o < outC; o++) for (let k = 0; k < K; k++) {
      const row = o * G + Math.floor(k / S);
      let s = 0;
      for (let t = 0; t < r; t++) s += coeffValue(f.codes[row * r + t]!, f.emax) * f.basis[t * S + (k % S)]!;
      assert.equal(rec[o * K + k], Math.fround(s));
    }
    // Stored form round-trips and its size is storageBits.
    const packed = packFactors(f);
    assert.deepEqual(unpackFactors({ ...packed, basis: f.basis, outC, K, segment: S, rank: r, emax: f.emax }, 'test'), f);
    assert.equal(storageBits(outC, K, { segment: S, rank: r, sparsity }), 8 * (packed.weights.byteLength + packed.rowMask.byteLength + f.basis.byteLength));
  }), { numRuns: 60 });
});

test('alternating projection: fitting the basis lowers the error of the power-of-two coefficients', () => {
  const outC = 32, K = 64, w = gaussian(outC * K);
  const err = (iterations: number) => {
    const rec = reconstruct(decompose(w, outC, K, { sparsity: 0, iterations }));
    return Math.sqrt(rec.reduce((a, v, i) => a + (v - w[i]!) ** 2, 0) / w.reduce((a, v) => a + v * v, 0));
  };
  const e0 = err(0), e4 = err(4);
  assert.ok(e4 < e0, `relative error ${e4} after 4 rounds vs ${e0} with B = I`);
  // Seven power-of-two levels: within 1/3 of each coefficient, far less on average.
  assert.ok(e4 < 0.2, `relative error ${e4}`);
});

test('SmartDeal LeNet-5: the deployed file stores the factors and inference on them equals the float reconstruction and the model', () => {
  const model = applyQuantPreset('lenet', 'smartdeal', 3);
  model.eval();
  const n = 6, x = Float32Array.from({ length: n * 784 }, () => (rng.uniform() < 0.6 ? 0 : rng.uniform()));
  const deployed = decodeDeployed(encodeDeployed(convert(model, [1, 28, 28])), 'smartdeal.sgq');
  const stages = deployed.stages.filter((s): s is MatStage => s.op === 'conv' || s.op === 'dense');
  assert.deepEqual(stages.map((s) => s.kernel), ['float', 'smartdeal', 'smartdeal', 'smartdeal', 'float']);
  // The file holds the factors: basis float32, codes of kept rows only, no dense weight array.
  for (const s of stages.filter((st) => st.kernel === 'smartdeal')) {
    const f = smartdealFactors(s);
    assert.ok(s.weights instanceof Uint32Array && s.basis instanceof Float32Array && s.rowMask instanceof Uint32Array);
    assert.equal(8 * (s.weights.byteLength + s.rowMask!.byteLength + s.basis!.byteLength), storageBits(s.outC, f.K));
  }
  // The float reconstruction: the same stages with Ce·B as float32 weights.
  const floatTwin = { ...deployed, stages: deployed.stages.map((s) => ('kernel' in s && s.kernel === 'smartdeal' ? { ...s, kernel: 'float' as const, weights: reconstruct(smartdealFactors(s)) } : s)) };
  const onFactors = runDeployed(deployed, x, [n, 1, 28, 28]).data, packed = runPacked(deployed, x, [n, 1, 28, 28]).data;
  const reconstructed = runDeployed(floatTwin, x, [n, 1, 28, 28]).data;
  const inProcess = noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x, [n, 1, 28, 28])).values())));
  for (const [name, got] of [['runDeployed', onFactors], ['runPacked', packed], ['in-process model', inProcess]] as const) {
    reconstructed.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) <= 1e-4 * (1 + Math.abs(v)), `${name}: logit ${i} ${got[i]} vs reconstruction ${v}`));
  }
  // summary(): bits, sparsity, bytes and MACs of the factored layers.
  const s = summary(model, [1, 28, 28]);
  const sd = s.layers.filter((l) => l.kernel === 'smartdeal');
  assert.equal(sd.length, 3);
  for (const l of sd) assert.equal(l.sparsity, 0.5);
  assert.ok(Math.abs(s.memoryBits / 8 - payloadBytes(deployed)) <= 0.05 * payloadBytes(deployed), `summary ${s.memoryBits / 8} B vs payload ${payloadBytes(deployed)} B`);
  // Dense layer 7 (400 -> 120): z = B·x over 100 segments (400·4 MACs) + 6000 kept rows · 4.
  assert.equal(s.layers[7]!.macs, 4 * (400 + 6000));
  // Fewer MACs than the dense products of the same layers (conv 3: 2,400 weights at 10x10 pixels).
  const dense = 2400 * 100 + 48000 + 10080;
  assert.ok(s.macsByKind.smartdeal! < 0.75 * dense, `${s.macsByKind.smartdeal} MACs vs ${dense} dense`);
});

test('a tampered smartdeal stage is refused by name', () => {
  const d = convert(applyQuantPreset('mlp', 'smartdeal', 0, [1, 4, 4], 3), [1, 4, 4]);
  const bad = { ...d, stages: d.stages.map((s) => ('kernel' in s && s.kernel === 'smartdeal' ? { ...s, rowMask: new Uint32Array(1) } : s)) };
  assert.throws(() => runDeployed(decodeDeployed(encodeDeployed(bad)), new Float32Array(16), [1, 1, 4, 4]), /deployed smartdeal stage \(512 x 16\): rowMask must hold 64 u32 words/);
});

test('the wasm SmartDeal kernel (segment = rank = 4, f32x4) equals the reference on the factors', async () => {
  const exports = await loadQuantKernelsFromBuild();
  assert.ok(exports, 'build/quant.wasm is built (npm run build:kernels)');
  try {
    const wasm = new QuantWasmKernels(exports);
    for (const [outC, K, rows, sparsity] of [[16, 150, 37, 0.5], [5, 7, 3, 0], [120, 400, 4, 0.9]] as const) {
      const f = decompose(gaussian(outC * K), outC, K, { sparsity });
      const x = gaussian(rows * K);
      const want = smartdealGemm(f, x, rows), got = wasm.smartdealGemm(f, x, rows);
      assert.equal(got.length, rows * outC);
      want.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) <= 1e-5 * (1 + Math.abs(v)), `[${outC} x ${K}] output ${i}: ${got[i]} vs ${v}`));
    }
    // Other shapes run the reference.
    const f3 = decompose(gaussian(6 * 10), 6, 10, { segment: 3, rank: 2 }), x3 = gaussian(2 * 10);
    assert.deepEqual(Array.from(wasm.smartdealGemm(f3, x3, 2)), Array.from(smartdealGemm(f3, x3, 2)));
  } finally {
    useQuantKernels(null);
  }
});
