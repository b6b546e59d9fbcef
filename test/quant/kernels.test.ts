// Packed kernels against float references: binary bit-exact (integers), int8 exact accumulators.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromValues } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { conv2d } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';
import {
  binaryConv, binaryGemm, convOut, int8Gemm, packSignRows, packSignsNHWC, packTernaryRows, packWeightsOHWI,
  popcount32, ternaryBinaryDot, unpackRows, wordsFor,
} from '../../src/quant/kernels.js';

const signs = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1));

test('popcount32 matches a bit loop', () => {
  fc.assert(fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
    let n = 0;
    for (let i = 0; i < 32; i++) n += (v >>> i) & 1;
    return popcount32(v) === n;
  }));
});

test('packing: bit 1 = −1, sign(0) = +1, padding bits 0', () => {
  const p = packSignRows([0, -1, 1, -0.5, -0], 1, 5);
  assert.equal(p[0], 0b01010);
  assert.deepEqual(Array.from(unpackRows(p, 1, 5, 'binary')), [1, -1, 1, -1, 1]);
});

test('binary GEMM is bit-exact vs the float ±1 dot product (K not a multiple of 32)', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 200 }), fc.integer(), (m, n, k, seed) => {
    const rng = new Rng(seed >>> 0, 1);
    const a = signs(rng, m * k), b = signs(rng, n * k);
    const out = binaryGemm(packSignRows(a, m, k), packSignRows(b, n, k), m, n, k);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
      if (out[i * n + j] !== s) return false;
    }
    return true;
  }), { numRuns: 60 });
});

test('binary conv equals conv2d of zero-padded ±1 input (padding is 0, not ±1), any stride', () => {
  const rng = new Rng(3, 2);
  for (const [c, k, stride, pad, h] of [[3, 3, 1, 1, 6], [37, 3, 2, 1, 7], [64, 5, 1, 2, 5], [1, 3, 1, 0, 5], [33, 1, 1, 0, 4]] as const) {
    const n = 2, o = 5;
    const x = signs(rng, n * c * h * h), w = signs(rng, o * c * k * k);
    const expected = scope(() => Array.from(conv2d(fromValues(x, [n, c, h, h]), fromValues(w, [o, c, k, k]), null, { stride, padding: pad }).values()));
    const s = { n, c, h, w: h, o, k, stride, pad };
    const acc = binaryConv(packSignsNHWC(x, n, c, h, h), packWeightsOHWI(w, o, c, k), s);
    const [oh, ow] = convOut(s);
    for (let b = 0; b < n; b++) for (let oc = 0; oc < o; oc++) for (let p = 0; p < oh * ow; p++) {
      assert.equal(acc[(b * oh * ow + p) * o + oc], expected[(b * o + oc) * oh * ow + p], `c=${c} k=${k} stride=${stride} pad=${pad} at ${b},${oc},${p}`);
    }
  }
});

test('ternary planes: 2 bits per weight, round trip, and ternary × binary dot', () => {
  const rng = new Rng(4, 1);
  const k = 70, rows = 3;
  const t = Float32Array.from({ length: rows * k }, () => rng.int(3) - 1);
  const packed = packTernaryRows(t, rows, k);
  assert.equal(packed.length, rows * 2 * wordsFor(k));
  assert.deepEqual(Array.from(unpackRows(packed, rows, k, 'ternary')), Array.from(t));
  const x = signs(rng, k);
  const xp = packSignRows(x, 1, k);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += t[r * k + i]! * x[i]!;
    assert.equal(ternaryBinaryDot(packed, r * 2 * wordsFor(k), xp, 0, wordsFor(k)), s);
  }
});

test('int8 GEMM accumulates exactly in int32 (extreme values included)', () => {
  const rng = new Rng(6, 1);
  const m = 3, n = 4, k = 300;
  const a = Int8Array.from({ length: m * k }, (_, i) => (i % 7 === 0 ? -128 : rng.int(256) - 128));
  const b = Int8Array.from({ length: n * k }, (_, i) => (i % 5 === 0 ? -128 : rng.int(256) - 128));
  const out = int8Gemm(a, b, m, n, k);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
    assert.equal(out[i * n + j], s);
  }
});
