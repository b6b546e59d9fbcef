// The packed runtime's kernels (kernels/quant/packed.ts) against the reference kernels, and
// runPacked against the TypeScript deploy runtime (runDeployed) on whole networks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rng } from '../../src/util/rng.js';
import { loadQuantWasm } from './wasm-setup.js';
import {
  applyQuantPreset, binaryConv, binaryConvFloat, binaryConvSigns, convOut, floatConv, floatConvSigns, int8Conv, int8Convs, binaryLenet5, bwnLenet5, convert, larqMnistBnn, loadQuantKernels, maxPoolSigns, packSigns, packSignsNHWC,
  packWeightsOHWI, QuantWasmKernels, quantWasmFile, runDeployed, runPacked, twnLenet5, useQuantKernels, w8a8Lenet5, wordsFor, xnorNet,
  type QuantWasmExports,
} from '../../src/quant/index.js';
import { kernels } from '../../src/backends/index.js';
import { BatchNorm, type Sequential } from '../../src/nn/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';

let wasm: QuantWasmKernels;
const rng = new Rng(33, 1);

before(async () => {
  wasm = await loadQuantWasm();
});
after(() => useQuantKernels(null));

const normals = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const thresholds = (c: number, integer: boolean) => ({
  threshold: integer ? Int32Array.from({ length: c }, () => rng.int(21) - 10) : normals(c),
  direction: Int8Array.from({ length: c }, () => rng.int(3) - 1),
});

test('a binary conv output pixel entirely in the zero padding (pad >= k) is 0', () => {
  const x = packSignsNHWC([1, -1, -1, 1], 1, 1, 2, 2), w = packWeightsOHWI([-1], 1, 1, 1), s = { n: 1, c: 1, h: 2, w: 2, o: 1, k: 1, stride: 1, pad: 2 };
  // 6 x 6 output: two rings read only padding (the corners two taps beyond both edges).
  const want = Array.from({ length: 36 }, (_, i) => {
    const y = Math.floor(i / 6) - 2, xo = (i % 6) - 2;
    return y >= 0 && y < 2 && xo >= 0 && xo < 2 ? -[1, -1, -1, 1][y * 2 + xo]! : 0;
  });
  assert.deepEqual(Array.from(binaryConv(x, w, s)), want);
  assert.deepEqual(Array.from(wasm.binaryConv(x, w, s)), want);
});

test('max of ±1 under bit 1 = -1 is the AND of the sign bits', () => {
  // One +1 (bit 0) in a window makes the max +1: AND, not OR.
  const x = packSignsNHWC([-1, 1, -1, -1], 1, 1, 2, 2);
  assert.deepEqual(Array.from(maxPoolSigns(x, 1, 2, 2, 1, 2)), [0]);
  assert.deepEqual(Array.from(maxPoolSigns(packSignsNHWC([-1, -1, -1, -1], 1, 1, 2, 2), 1, 2, 2, 1, 2)), [1]);
});

test('wasm binaryConv / binaryConvSigns / binaryConvFloat equal the reference (stride, zero padding, 8/16-bit tap slots, channel word edges)', () => {
  fc.assert(fc.property(
    fc.record({ n: fc.integer({ min: 1, max: 2 }), c: fc.constantFrom(1, 5, 8, 12, 16, 32, 33, 64, 70), h: fc.integer({ min: 3, max: 9 }), w: fc.integer({ min: 3, max: 9 }),
      o: fc.constantFrom(1, 7, 32, 40), k: fc.constantFrom(1, 3, 4, 5, 8), stride: fc.integer({ min: 1, max: 2 }), pad: fc.integer({ min: 0, max: 2 }) }),
    (s) => {
      if (s.k > s.h + 2 * s.pad || s.k > s.w + 2 * s.pad) return;
      const x = packSignsNHWC(normals(s.n * s.c * s.h * s.w), s.n, s.c, s.h, s.w), w = packWeightsOHWI(normals(s.o * s.c * s.k * s.k), s.o, s.c, s.k);
      assert.deepEqual(Array.from(wasm.binaryConv(x, w, s)), Array.from(binaryConv(x, w, s)));
      const t = thresholds(s.o, true);
      assert.deepEqual(Array.from(wasm.binaryConvSigns(x, w, s, t)), Array.from(binaryConvSigns(x, w, s, t)));
      const mul = normals(s.o), bias = normals(s.o), [oh, ow] = convOut(s), residual = normals(s.n * s.o * oh * ow);
      for (const r of [undefined, residual]) {
        const got = wasm.binaryConvFloat(x, w, s, mul, bias, r), want = binaryConvFloat(x, w, s, mul, bias, r);
        assert.deepEqual(Array.from(got.values), Array.from(want.values), `float epilogue${r ? ' + residual' : ''}`);
        assert.deepEqual(Array.from(got.signs), Array.from(want.signs), `signs of the float output${r ? ' + residual' : ''}`);
      }
    }), { numRuns: 40 });
});

test('wasm binary convs of <= 16 input channels (byte tables, signs compared on popcounts) equal the reference for thresholds beyond every count', () => {
  // k·k·c < 255: the table path; 16 < o: several 16-channel groups, a partial last one; thresholds
  // from far below −k·k·c to far above it (the compares that are always or never −1), all directions.
  for (const [c, k, o, h, stride, pad] of [[16, 3, 16, 7, 1, 1], [16, 3, 40, 6, 2, 1], [6, 5, 20, 9, 1, 2], [3, 3, 33, 5, 1, 0]] as const) {
    const s = { n: 2, c, h, w: h + 1, o, k, stride, pad }, [oh, ow] = convOut(s);
    const x = packSignsNHWC(normals(s.n * c * h * s.w), s.n, c, h, s.w), w = packWeightsOHWI(normals(o * c * k * k), o, c, k);
    assert.deepEqual(Array.from(wasm.binaryConv(x, w, s)), Array.from(binaryConv(x, w, s)), JSON.stringify(s));
    const span = 2 * k * k * c;
    for (let r = 0; r < 4; r++) {
      const t = { threshold: Int32Array.from({ length: o }, () => rng.int(2 * span + 1) - span), direction: Int8Array.from({ length: o }, () => rng.int(3) - 1) };
      assert.deepEqual(Array.from(wasm.binaryConvSigns(x, w, s, t)), Array.from(binaryConvSigns(x, w, s, t)), `${JSON.stringify(s)} thresholds ${t.threshold}`);
    }
    const mul = normals(o), bias = normals(o), residual = normals(s.n * o * oh * ow);
    const got = wasm.binaryConvFloat(x, w, s, mul, bias, residual), want = binaryConvFloat(x, w, s, mul, bias, residual);
    assert.deepEqual(Array.from(got.values), Array.from(want.values));
    assert.deepEqual(Array.from(got.signs), Array.from(want.signs));
  }
});

test('wasm packSigns equals the reference for float (NaN included)/int values, both layouts, with and without thresholds', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.constantFrom(1, 6, 32, 45, 64), fc.integer({ min: 1, max: 30 }), fc.boolean(), fc.boolean(), fc.boolean(),
    (n, c, p, channelsLast, integer, withThresholds) => {
      const x = integer ? Int32Array.from({ length: n * c * p }, () => rng.int(41) - 20) : normals(n * c * p).map((v) => (rng.int(20) ? v : NaN));
      const t = withThresholds ? thresholds(c, integer) : null, l = { n, c, p, channelsLast };
      assert.deepEqual(Array.from(wasm.packSigns(x, l, t)), Array.from(packSigns(x, l, t)));
    }), { numRuns: 60 });
});

test('wasm maxPoolSigns equals the reference', () => {
  for (const [n, h, w, c, k] of [[1, 4, 4, 1, 2], [2, 13, 11, 64, 2], [3, 9, 9, 70, 3]] as const) {
    const x = packSignsNHWC(normals(n * c * h * w), n, c, h, w);
    assert.deepEqual(Array.from(wasm.maxPoolSigns(x, n, h, w, wordsFor(c), k)), Array.from(maxPoolSigns(x, n, h, w, wordsFor(c), k)));
  }
});

/** Random BatchNorm statistics and affine parameters (both signs of gamma), eval mode. */
function withStats(model: Sequential): Sequential {
  for (const [, m] of model.namedModules()) {
    if (m instanceof BatchNorm) {
      m.runningMean.data().set(Float32Array.from({ length: m.channels }, () => rng.normal() * 3));
      m.runningVar.data().set(Float32Array.from({ length: m.channels }, () => 1 + rng.uniform() * 10));
      m.gamma.data().set(Float32Array.from({ length: m.channels }, () => (rng.uniform() < 0.1 ? -1 : 1) * (0.5 + rng.uniform())));
      m.beta.data().set(Float32Array.from({ length: m.channels }, () => rng.normal()));
    }
  }
  return model.eval();
}

test('runPacked matches runDeployed (TypeScript runtime) on every deployable network, wasm and reference kernels', () => {
  const n = 3, x = Float32Array.from({ length: n * 784 }, () => rng.uniform() * 2 - 0.5), shape = [n, 1, 28, 28];
  const models: [string, Sequential][] = [
    ['larq-bnn', withStats(larqMnistBnn(2))], ['binary-lenet5', withStats(binaryLenet5(2))], ['irnet', withStats(applyQuantPreset('lenet', 'irnet', 2))], ['fda', withStats(applyQuantPreset('lenet', 'fda', 2))], ['xnor', withStats(xnorNet(2))],
    ['bwn', bwnLenet5(2).eval()], ['twn', twnLenet5(2).eval()], ['w8a8', w8a8Lenet5(2)],
  ];
  for (const [name, model] of models) {
    noGrad(() => scope(() => model.call(fromValues(x, shape)))); // calibrates LSQ steps
    model.eval();
    const d = convert(model, [1, 28, 28]);
    const want = runDeployed(d, x, shape);
    assert.equal(kernels('float32').binaryConvSigns.name, 'bound binaryConvSigns', 'the wasm backend binds the packed kernels');
    for (const got of [runPacked(d, x, shape), noWasm(() => runPacked(d, x, shape))]) {
      assert.deepEqual(got.shape, want.shape, name);
      const scale = Math.max(1, ...Array.from(want.data, Math.abs));
      want.data.forEach((v, i) => assert.ok(Math.abs(v - got.data[i]!) <= 1e-4 * scale, `${name}[${i}]: ${got.data[i]} vs ${v}`));
    }
    model.dispose();
  }
});

function noWasm<T>(f: () => T): T {
  const w = wasm.exports;
  useQuantKernels(null);
  try {
    return f();
  } finally {
    useQuantKernels(w);
  }
}

test('wasm int8Conv (fused quantize, i16 implicit GEMM on the NHWC code image, epilogue, ReLU, max-pool) equals the reference bit for bit', () => {
  fc.assert(fc.property(
    fc.record({ n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 1, max: 20 }), h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }), o: fc.integer({ min: 1, max: 13 }), k: fc.integer({ min: 1, max: 5 }), stride: fc.integer({ min: 1, max: 3 }), pad: fc.nat(4), seed: fc.nat(), relu: fc.boolean(), pool: fc.constantFrom(0, 0, 2, 3), unsigned: fc.boolean() }),
    (p) => {
      const pad = Math.min(p.pad, p.k - 1), h = Math.max(p.h, p.k - 2 * pad), w = Math.max(p.w, p.k - 2 * pad);
      checkInt8Conv({ n: p.n, c: p.c, h, w, o: p.o, k: p.k, stride: p.stride, pad }, p.seed, { relu: p.relu, pool: p.pool }, p.unsigned);
    }), { numRuns: 150, seed: 0x18c });
  // Fixed shapes: dense stages at batch 1-5 (fewer than 4 pixels: 4 channels share each load), LeNet-5's convs, a long tap row.
  for (const n of [1, 2, 3, 4, 5]) for (const [c, o] of [[400, 120], [84, 10], [13, 7]] as const) checkInt8Conv({ n, c, h: 1, w: 1, o, k: 1, stride: 1, pad: 0 }, n * o, {}, false);
  checkInt8Conv({ n: 1, c: 1, h: 28, w: 28, o: 6, k: 5, stride: 1, pad: 2 }, 1, { relu: true, pool: 2 }, false);
  checkInt8Conv({ n: 2, c: 6, h: 14, w: 14, o: 16, k: 5, stride: 1, pad: 0 }, 2, { relu: true, pool: 2 }, true);
  checkInt8Conv({ n: 1, c: 37, h: 3, w: 4, o: 5, k: 3, stride: 1, pad: 1 }, 3, { relu: false, pool: 0 }, false);
});

/** |a − b| within float32 sums of `terms` products of magnitude ≤ `scale` each (the wasm kernels sum in another order). */
function assertClose(a: Float32Array, b: Float32Array, bound: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= bound)) assert.fail(`${what}: output ${i}: wasm ${a[i]} vs reference ${b[i]}`);
}

test('wasm floatConv / floatConvSigns (cached weight layouts, im2col, GEMM, epilogue, ReLU, max-pool, sign packing; dense as 1x1) equal the reference on ragged shapes', () => {
  fc.assert(fc.property(
    fc.record({ n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 1, max: 9 }), h: fc.integer({ min: 1, max: 11 }), w: fc.integer({ min: 1, max: 11 }), o: fc.integer({ min: 1, max: 11 }), k: fc.integer({ min: 1, max: 5 }), stride: fc.integer({ min: 1, max: 3 }), pad: fc.nat(3), seed: fc.nat(), relu: fc.boolean(), pool: fc.constantFrom(0, 0, 2, 3), raw: fc.boolean(), dense: fc.boolean() }),
    (p) => {
      const pad = Math.min(p.pad, p.k - 1), h = Math.max(p.h, p.k - 2 * pad), w = Math.max(p.w, p.k - 2 * pad);
      // A dense layer is a 1x1 conv on 1x1 images (K = c up to 70: row tails of the 4-float padding).
      const cs = p.dense ? { n: p.n, c: p.c * 7 + p.k, h: 1, w: 1, o: p.o, k: 1, stride: 1, pad: 0 } : { n: p.n, c: p.c, h, w, o: p.o, k: p.k, stride: p.stride, pad };
      const [oh, ow] = convOut(cs), pool = p.dense || Math.min(oh, ow) < p.pool ? 0 : p.pool;
      const r = new Rng(p.seed, 3), K = cs.c * cs.k * cs.k;
      const x = Float32Array.from({ length: cs.n * cs.c * cs.h * cs.w }, () => r.normal());
      const wt = Float32Array.from({ length: cs.o * K }, () => r.normal());
      const mul = p.raw ? null : normals(cs.o), bias = p.raw ? null : normals(cs.o), post = { relu: p.relu, pool };
      const want = floatConv(x, wt, cs, mul, bias, post);
      assertClose(wasm.floatConv(x, wt, cs, mul, bias, post), want, 1e-5 * K * 8, JSON.stringify({ ...cs, post }));
      // Second call: the weights come from the arena cache.
      assertClose(wasm.floatConv(x, wt, cs, mul, bias, post), want, 1e-5 * K * 8, 'cached weights');
      // Signs of the raw sums under float thresholds (all three directions), thresholds far enough from the sums that order of summation cannot flip them.
      const sums = floatConv(x, wt, cs, null, null), p1 = oh * ow;
      const t = thresholds(cs.o, false);
      for (let c = 0; c < cs.o; c++) for (let b = 0; b < cs.n; b++) for (let q = 0; q < p1; q++) if (Math.abs(sums[(b * cs.o + c) * p1 + q]! - t.threshold[c]!) < 1e-3) t.threshold[c] = t.threshold[c]! + 0.01;
      assert.deepEqual(Array.from(wasm.floatConvSigns(x, wt, cs, t)), Array.from(floatConvSigns(x, wt, cs, t)), 'floatConvSigns');
    }), { numRuns: 200, seed: 0x2f1 });
});

/** wasm int8Conv vs the reference on random inputs with exact rounding ties, values beyond the range and NaN/±Infinity. */
function checkInt8Conv(cs: { n: number; c: number; h: number; w: number; o: number; k: number; stride: number; pad: number }, seed: number, post: { relu?: boolean; pool?: number }, unsigned: boolean): void {
  const r = new Rng(seed, 2), K = cs.c * cs.k * cs.k;
  const x = Float32Array.from({ length: cs.n * cs.c * cs.h * cs.w }, () => {
    const u = r.int(20);
    return u === 0 ? NaN : u === 1 ? (r.int(2) ? Infinity : -Infinity) : u < 6 ? (r.int(600) - 300) * 0.03125 : r.normal() * 4;
  });
  const wt = Int8Array.from({ length: cs.o * K }, () => r.int(256) - 128);
  const mul = normals(cs.o), bias = normals(cs.o), g = unsigned ? { step: 0.0625, lo: 0, hi: 127 } : { step: 0.0625, lo: -128, hi: 127 };
  const a = wasm.int8Conv(x, wt, cs, g, mul, bias, post), b = int8Conv(x, wt, cs, g, mul, bias, post);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${JSON.stringify(cs)}: output ${i}: wasm ${a[i]} vs reference ${b[i]}`);
}

test('wasm int8Convs (activations kept in the arena between steps) equals the reference chain; a step that does not fit is refused naming it', () => {
  const r = new Rng(77, 3);
  const step = (n: number, c: number, h: number, o: number, k: number, pad: number, post: { relu?: boolean; pool?: number }, lo = -128) => ({
    w: Int8Array.from({ length: o * c * k * k }, () => r.int(256) - 128), s: { n, c, h, w: h, o, k, stride: 1, pad },
    g: { step: 0.03125 + r.uniform(), lo, hi: 127 }, mul: Float32Array.from({ length: o }, () => r.normal() * 0.01), bias: normals(o), post,
  });
  for (const n of [1, 3]) {
    // LeNet-5's shape: conv-ReLU-pool twice, then three dense layers (the flatten is a reshape).
    const steps = [step(n, 1, 28, 6, 5, 2, { relu: true, pool: 2 }), step(n, 6, 14, 16, 5, 0, { relu: true, pool: 2 }, 0), step(n, 400, 1, 120, 1, 0, { relu: true }, 0), step(n, 120, 1, 84, 1, 0, { relu: true }, 0), step(n, 84, 1, 10, 1, 0, {}, 0)];
    const x = Float32Array.from({ length: n * 784 }, () => (r.int(10) === 0 ? (r.int(300) - 150) * 0.03125 : r.normal() * 3));
    const a = wasm.int8Convs(x, steps), b = int8Convs(x, steps);
    assert.equal(a.length, n * 10);
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`batch ${n}: output ${i}: wasm ${a[i]} vs reference ${b[i]}`);
  }
  const bad = [step(1, 1, 8, 4, 3, 1, {}), step(1, 5, 8, 2, 3, 1, {})];
  assert.throws(() => wasm.int8Convs(new Float32Array(64), bad), /int8Convs step 1: x \[256\].*do not fit/);
});


test('wasm stageScope: stage outputs stay in the arena and feed the next kernel in place (a ResNet block summed into its shortcut), equal to the reference chain in every scope, nested or not', () => {
  const r = new Rng(91, 4);
  const chain = (n: number, h: number) => {
    const stem = { n, c: 3, h, w: h, o: 12, k: 3, stride: 1, pad: 1 }, block = { n, c: 12, h, w: h, o: 12, k: 3, stride: 1, pad: 1 };
    const x = Float32Array.from({ length: n * 3 * h * h }, () => r.normal());
    const wf = normals(12 * 27), mul = normals(12), bias = normals(12);
    const w1 = packWeightsOHWI(normals(12 * 12 * 9), 12, 12, 3), w2 = packWeightsOHWI(normals(12 * 12 * 9), 12, 12, 3);
    const t = thresholds(12, true), mul2 = normals(12), bias2 = normals(12), signs = { n, c: 12, p: h * h, channelsLast: false };
    // Reference chain, from the wasm stem's values (float sums may differ from the reference's in the last bit).
    const f0 = wasm.floatConv(x, wf, stem, mul, bias), a0 = binaryConvSigns(packSigns(f0, signs, null), w1, block, t);
    const want = binaryConvFloat(a0, w2, block, mul2, bias2, f0), pooled = maxPoolSigns(want.signs, n, h, h, 1, 2);
    const run = () => {
      const f = wasm.floatConv(x, wf, stem, mul, bias);
      assert.deepEqual(Array.from(f), Array.from(f0), 'stem in the scope');
      const a = wasm.binaryConvSigns(wasm.packSigns(f, signs, null), w1, block, t);
      const y = wasm.binaryConvFloat(a, w2, block, mul2, bias2, f);
      // On shared memory the block's sum is written into its shortcut's arena block (what runPacked relies on).
      assert.equal(y.values === f, f.buffer instanceof SharedArrayBuffer);
      return { values: Array.from(y.values), signs: Array.from(y.signs), pooled: Array.from(wasm.maxPoolSigns(y.signs, n, h, h, 1, 2)) };
    };
    const expected = { values: Array.from(want.values), signs: Array.from(want.signs), pooled: Array.from(pooled) };
    // First scope (pool empty: blocks taken past it), second (the pool sized by the first), nested (the inner end keeps the outer's views).
    assert.deepEqual(wasm.stageScope(run), expected);
    assert.deepEqual(wasm.stageScope(run), expected);
    assert.deepEqual(wasm.stageScope(() => {
      const outer = run();
      wasm.stageScope(run);
      return outer;
    }), expected);
    assert.deepEqual(run(), expected, 'outside a scope');
  };
  chain(1, 8);
  // Past the 4 MiB kept between scopes: 2 x 12 x 160 x 160 floats per output.
  chain(2, 160);
  chain(1, 8);
});
