// Activation compression II: GACT allocation (budget, ordering, a closed-form case), the
// Compression session's auto:B allocation from measured sensitivities, Mesa's per-head ranges
// (decode error within each head's step, no value clamped), and COMET's per-element error bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backward } from '../../src/autograd/backward.js';
import { getBackend, kernels, registerWasmBackend, setBackend } from '../../src/backends/index.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { allocateBits, predictedVariance } from '../../src/compress/auto.js';
import { cometBound, cometDecode, cometEncode } from '../../src/compress/comet.js';
import { packTensor, releasePacked, unpackTensor } from '../../src/compress/codecs.js';
import { Compression } from '../../src/compress/act.js';
import { parseActSpec } from '../../src/compress/policy.js';
import { Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { crossEntropy } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

test('allocateBits: meets the budget, sensitive tensors keep more bits, and a hand-worked case', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ sensitivity: fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1e6, noNaN: true })), numel: fc.integer({ min: 1, max: 1000 }) }), { minLength: 1, maxLength: 12 }),
    fc.constantFrom(1, 2, 3, 4, 8),
    (items, avg) => {
      const bits = allocateBits(items, avg);
      const total = items.reduce((s, it) => s + it.numel, 0);
      assert.ok(bits.reduce((s, b, i) => s + b * items[i]!.numel, 0) <= avg * total + 1e-6);
      // Equal sizes: more sensitive never gets fewer bits.
      for (let i = 0; i < items.length; i++) for (let j = 0; j < items.length; j++) {
        if (items[i]!.numel === items[j]!.numel && items[i]!.sensitivity > items[j]!.sensitivity) assert.ok(bits[i]! >= bits[j]!);
      }
      // Never worse than uniform bits at the average (when the ladder has it).
      if ([1, 2, 4, 8].includes(avg)) assert.ok(predictedVariance(items, bits) <= predictedVariance(items, items.map(() => avg)) * (1 + 1e-6));
    }), { numRuns: 150 });
  // 8,8 (160 bits) -> budget 90: greedy steps b 8->4, b 4->2, a 8->4 (60 bits), then gives b back 2->4 (80 bits);
  // variance 101/15² = 0.449 beats [8, 1] (1.0015) and [4, 2] (0.555).
  assert.deepEqual(allocateBits([{ sensitivity: 100, numel: 10 }, { sensitivity: 1, numel: 10 }], 4.5), [4, 4]);
  assert.throws(() => allocateBits([], 0.5), /average bits/);
});

test('parseActSpec: auto:B and comet:EB, errors name the spec', () => {
  assert.deepEqual(parseActSpec('auto:2'), { mode: 'auto', autoBits: 2 });
  assert.deepEqual(parseActSpec('comet:0.01'), { mode: 'comet', cometBound: 0.01 });
  assert.deepEqual(parseActSpec('mesa'), { mode: 'mesa' });
  for (const bad of ['auto:0', 'auto:', 'comet:2', 'int2:4', 'auto:2:3', 'gact']) assert.throws(() => parseActSpec(bad), RangeError, bad);
});

test('auto:B session: measured allocation under the budget, more bits where the gradient is more sensitive', () => {
  const rng = new Rng(3);
  const model = new Sequential(new Linear(64, 64, { rng }), ReLU(), new Linear(64, 64, { rng }), ReLU(), new Linear(64, 4, { rng }));
  const act = new Compression({ mode: 'auto', autoBits: 2, autoInterval: 2, model, minElements: 1, seed: 1 });
  const x = fromValues(Float32Array.from({ length: 32 * 64 }, () => rng.normal()), [32, 64]);
  const y = fromValues(Int32Array.from({ length: 32 }, (_, i) => i % 4), [32], 'int32');
  for (let step = 0; step < 3; step++) {
    scope(() => backward(act.run(() => crossEntropy(model.call(x), y))));
    for (const p of model.parameters()) p.grad = null;
  }
  const a = act.allocation()!;
  // The network input and the last layer's input are edges (>= 8 bits, not allocated): one save left.
  assert.ok(a.saves.length >= 1, JSON.stringify(a));
  assert.ok(a.meanBits <= 2 + 1e-9 && a.meanBits >= 1, String(a.meanBits));
  for (const s of a.saves) assert.ok([1, 2, 4, 8].includes(s.bits) && s.sensitivity > 0 && Number.isFinite(s.sensitivity));
  // Scaling one save's values up raises its sensitivity: pair it with a copy at 1/100 the range.
  const items = [{ sensitivity: a.saves[0]!.sensitivity, numel: 100 }, { sensitivity: a.saves[0]!.sensitivity / 1e4, numel: 100 }];
  const bits = allocateBits(items, 2.5); // [4, 1] fits 2.5 bits on average
  assert.ok(bits[0]! > bits[1]!, JSON.stringify(bits));
  x.dispose(); y.dispose(); model.dispose();
});

test('mesa: per-head ranges, every decoded value within its head step, values beyond a lagging running range not clamped', () => {
  scope(() => {
    const rng = new Rng(5);
    const scale = [0.01, 1, 100];
    const v = Float32Array.from({ length: 2 * 3 * 4 * 8 }, (_, i) => rng.normal() * scale[Math.floor(i / 32) % 3]!);
    const x = fromValues(v, [2, 3, 4, 8]);
    const ranges: number[] = [];
    for (let h = 0; h < 3; h++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < v.length; i++) if (Math.floor(i / 32) % 3 === h) { lo = Math.min(lo, v[i]!); hi = Math.max(hi, v[i]!); }
      ranges.push(lo, hi);
    }
    const p = packTensor(x, { kind: 'mesa', ranges }, { seed: 1, stream: 0, step: 0 });
    const back = unpackTensor(p).values();
    for (let i = 0; i < v.length; i++) {
      const h = Math.floor(i / 32) % 3, step = (ranges[2 * h + 1]! - ranges[2 * h]!) / 255;
      assert.ok(Math.abs(back[i]! - v[i]!) <= step * 1.001 + 1e-6, `${i}: ${back[i]} vs ${v[i]} (head ${h})`);
    }
    releasePacked(p);
    // A session whose running range lags (values grow 10x) still decodes within the batch's step.
    const act = new Compression({ mode: 'mesa', minElements: 1 });
    const rngW = new Rng(6);
    const model = new Sequential(new Linear(8, 8, { rng: rngW }), ReLU(), new Linear(8, 2, { rng: rngW }));
    for (const s of [1, 10]) {
      const xi = fromValues(Float32Array.from({ length: 16 * 8 }, () => rng.normal() * s), [16, 8]);
      const yi = fromValues(Int32Array.from({ length: 16 }, (_, i) => i % 2), [16], 'int32');
      const loss = act.run(() => crossEntropy(model.call(xi), yi));
      assert.ok(Number.isFinite(loss.item()));
      backward(loss);
      for (const p of model.parameters()) assert.ok(p.grad!.values().every(Number.isFinite));
    }
    model.dispose();
  });
});

test('comet: every decoded element lies within the absolute bound; truncation is an error', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.constant(0)), { maxLength: 700 }),
    fc.double({ min: 0, max: 10, noNaN: true }),
    (values, eb) => {
      const x = Float32Array.from(values);
      const bytes = cometEncode(x, eb);
      const out = new Float32Array(x.length);
      cometDecode(bytes, out);
      const bound = cometBound(bytes);
      assert.equal(bound, Math.fround(eb));
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(out[i]! - x[i]!) <= bound, `${i}: ${out[i]} vs ${x[i]} (eb ${bound})`);
    }), { numRuns: 300 });
  const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 7));
  const bytes = cometEncode(x, 1e-3);
  assert.throws(() => cometDecode(bytes.subarray(0, bytes.length >> 1), new Float32Array(1000)), /stream ends/);
  // Smooth data compresses well below 32 bits per element at a 1e-3 bound.
  assert.ok(bytes.length * 8 / x.length < 12, String(bytes.length * 8 / x.length));
  // In the codec: relative bound × the tensor's range.
  scope(() => {
    const t = fromValues(x, [10, 100]);
    const p = packTensor(t, { kind: 'comet', bound: 0.01 }, null);
    const back = unpackTensor(p).values();
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i]! - x[i]!) <= 0.01 * 2 * 1.0001);
    releasePacked(p);
  });
});

test('halfEncode/halfDecode: wasm bit-identical to the TypeScript oracle (fp16 and bf16, special values, random bit patterns)', () => {
  assert.ok(registerWasmBackend(), 'wasm kernels not built (npm run build:kernels)');
  const previous = getBackend();
  setBackend('wasm');
  const wasm = kernels('float32');
  setBackend(previous);
  const rng = new Rng(9);
  const special = [0, -0, 1, -1, 65504, 65520, -65536, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, Infinity, -Infinity, NaN, 3.4e38, 1.17549435e-38];
  const bits = new Uint32Array(20000 + special.length).map(() => (rng.int(65536) << 16) | rng.int(65536));
  const x = fromValues(new Float32Array(bits.buffer).map((v, i) => (i < special.length ? special[i]! : v)), [bits.length]);
  scope(() => {
    for (const format of ['fp16', 'bf16'] as const) {
      const a = Tensor.uninitialized([2 * x.size], 'uint8', 'workspace'), b = Tensor.uninitialized([2 * x.size], 'uint8', 'workspace');
      referenceKernels.halfEncode(x, a, format);
      wasm.halfEncode(x, b, format);
      assert.deepEqual(b.values(), a.values(), `${format} encode`);
      const da = Tensor.uninitialized([x.size], 'float32', 'workspace'), db = Tensor.uninitialized([x.size], 'float32', 'workspace');
      referenceKernels.halfDecode(a, da, format);
      wasm.halfDecode(a, db, format);
      // Compare bit patterns (NaN payloads included).
      assert.deepEqual(new Uint32Array(Float32Array.from(db.values()).buffer), new Uint32Array(Float32Array.from(da.values()).buffer), `${format} decode`);
    }
  });
  x.dispose();
});
