// Quantizer kernels on plain typed arrays: packing round trips, error bounds, unbiasedness,
// reproducibility, fp16/bf16 conversion, DIVISION reconstruction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  codeBytes, dequantizeGroups, groupCount, groupMeta, packInts, quantizeGroups, unpackInts,
  type CodeBits, type GroupLayout, type MetaPrecision, type NoiseKey,
} from '../../src/compress/quantize.js';
import { fromBFloat16Bits, fromFloat16Bits, toBFloat16Bits, toFloat16Bits } from '../../src/compress/float16.js';
import { divisionDecode, divisionSplit, hfcLayout, lfcLength } from '../../src/compress/division.js';
import { Rng } from '../../src/util/rng.js';

function encode(x: Float32Array, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null, precision: MetaPrecision = 'fp16') {
  const meta = new Float64Array(2 * groupCount(layout));
  const used = groupMeta(x, layout, bits, precision, meta);
  const codes = new Uint8Array(codeBytes(x.length, bits));
  quantizeGroups(x, layout, bits, noise, meta, codes);
  const out = new Float32Array(x.length);
  dequantizeGroups(codes, meta, layout, bits, out);
  return { meta, codes, out, used };
}

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
}

test('fp16: every non-NaN half round-trips, and conversion rounds to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const v = fromFloat16Bits(h);
    if (Number.isNaN(v)) continue;
    assert.equal(toFloat16Bits(v), h, `half 0x${h.toString(16)}`);
  }
  assert.equal(fromFloat16Bits(toFloat16Bits(65504)), 65504);
  assert.equal(fromFloat16Bits(toFloat16Bits(65520)), Infinity); // halfway to 2^16 rounds up: overflow
  assert.equal(fromFloat16Bits(toFloat16Bits(1 + 2 ** -11)), 1); // tie -> even mantissa
  assert.equal(fromFloat16Bits(toFloat16Bits(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.equal(fromFloat16Bits(toFloat16Bits(2 ** -25)), 0); // tie between 0 and the smallest subnormal
  assert.equal(fromFloat16Bits(toFloat16Bits(3 * 2 ** -26)), 2 ** -24);
  assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
  assert.equal(Object.is(fromFloat16Bits(toFloat16Bits(-0)), -0), true);
  fc.assert(fc.property(fc.float({ noNaN: true, min: -60000, max: 60000 }), (x) => {
    const y = fromFloat16Bits(toFloat16Bits(x));
    const ulp = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(x) || 1)), -14) - 10);
    return Math.abs(y - x) <= ulp / 2;
  }));
});

test('bf16 keeps the float32 exponent range and rounds to nearest even', () => {
  assert.equal(fromBFloat16Bits(toBFloat16Bits(1)), 1);
  assert.equal(fromBFloat16Bits(toBFloat16Bits(1e30)) / 1e30 - 1 < 2 ** -8, true);
  assert.equal(fromBFloat16Bits(toBFloat16Bits(1 + 2 ** -8)), 1); // tie -> even
  assert.equal(fromBFloat16Bits(toBFloat16Bits(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
});

test('packInts/unpackInts round-trip any width 1..32', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 32 }), fc.array(fc.nat(), { maxLength: 70 }), (bits, raw) => {
    const vals = raw.map((v) => (bits === 32 ? v : v % 2 ** bits));
    const packed = new Uint8Array(codeBytes(vals.length, bits));
    packInts(vals, bits, packed);
    const back = new Array<number>(vals.length).fill(0);
    unpackInts(packed, bits, back);
    assert.deepEqual(back, vals);
  }));
});

test('codes round-trip bit-exactly for b in {1,2,4,8}, G in {32..256}, sizes 0, 1 and ragged', () => {
  for (const bits of [1, 2, 4, 8] as const) {
    for (const groupSize of [32, 64, 128, 256]) {
      for (const [rows, rowLength] of [[0, 5], [1, 1], [1, 0], [3, 77], [2, 300], [1, 256]] as const) {
        const x = randomValues(rows * rowLength, bits * 1000 + groupSize + rowLength);
        const layout = { rows, rowLength, groupSize };
        const first = encode(x, layout, bits, { seed: 3, stream: 1, step: 2 });
        // Re-encoding the decoded values with the same metadata and nearest rounding gives the same codes.
        const again = new Uint8Array(first.codes.length);
        quantizeGroups(first.out, layout, bits, null, first.meta, again);
        assert.deepEqual(again, first.codes, `b=${bits} G=${groupSize} ${rows}x${rowLength}`);
      }
    }
  }
});

test('error bounds: |x̂ − x| < Δ (stochastic), ≤ Δ/2 (nearest); constant groups exact; no NaN', () => {
  const n = 1 << 20;
  const r = new Rng(5);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const kind = i % 7;
    x[i] = kind === 0 ? 0 : kind === 1 ? -0 : kind === 2 ? 1e-40 * r.normal() : r.normal() * 10 ** (r.int(9) - 4);
  }
  x.fill(0.1, 4096, 4096 + 512); // constant groups whose value is not an fp16 number
  x.fill(-3, 8192, 8192 + 512);
  const layout = { rows: 4, rowLength: n / 4, groupSize: 256 };
  for (const bits of [2, 4, 8] as const) {
    for (const noise of [{ seed: 1, stream: 0, step: 0 }, null]) {
      const { meta, out, used } = encode(x, layout, bits, noise);
      assert.equal(used, 'fp32', 'a constant 0.1 group forces exact fp32 metadata');
      for (let i = 0; i < n; i++) {
        const g = i >> 8;
        const step = meta[2 * g + 1]!;
        const err = Math.abs(out[i]! - x[i]!);
        const bound = noise ? step : step / 2;
        // float32 arithmetic: the encode's t = (x − min)·inv + u (at most 256) is off by < 2^-14,
        // so a code is off by at most that much of a step; the decode adds at most an ulp of the value.
        if (!Number.isFinite(out[i]!) || !(err <= bound + step * 2 ** -14 + Math.abs(x[i]!) * 2 ** -23 + 1e-45) || (step === 0 && out[i] !== x[i])) {
          assert.fail(`b=${bits} i=${i}: x=${x[i]} decoded ${out[i]}, error ${err} > bound ${bound}`);
        }
      }
      assert.ok(out.subarray(4096, 4096 + 512).every((v) => v === Math.fround(0.1)));
      assert.ok(out.subarray(8192, 8192 + 512).every((v) => v === -3));
    }
  }
});

test('fp16 metadata: used when representable, and stays unbiased (min below, range covered)', () => {
  const x = randomValues(4096, 9);
  const layout = { rows: 2, rowLength: 2048, groupSize: 256 };
  const { meta, used } = encode(x, layout, 4, { seed: 1, stream: 0, step: 0 });
  assert.equal(used, 'fp16');
  for (let g = 0; g < meta.length / 2; g++) {
    const grp = x.subarray(g * 256, g * 256 + 256);
    assert.ok(meta[2 * g]! <= Math.min(...grp));
    assert.ok(meta[2 * g]! + 15 * meta[2 * g + 1]! >= Math.max(...grp));
    assert.equal(fromFloat16Bits(toFloat16Bits(meta[2 * g]!)), meta[2 * g]);
    assert.equal(fromFloat16Bits(toFloat16Bits(meta[2 * g + 1]!)), meta[2 * g + 1]);
  }
  const big = Float32Array.from(x, (v) => v * 1e6); // beyond fp16 range
  assert.equal(encode(big, layout, 4, null).used, 'fp32');
});

test('stochastic rounding is unbiased with variance Δ²f(1−f) (10,000 encodes)', () => {
  const x = randomValues(256, 11);
  const layout = { rows: 1, rowLength: 256, groupSize: 256 };
  const K = 10000;
  const sum = new Float64Array(256), sq = new Float64Array(256);
  let meta = new Float64Array(0);
  for (let k = 0; k < K; k++) {
    const e = encode(x, layout, 2, { seed: 7, stream: 0, step: k });
    meta = e.meta;
    for (let i = 0; i < 256; i++) {
      const d = e.out[i]! - x[i]!;
      sum[i]! += d;
      sq[i]! += d * d;
    }
  }
  const [mn, step] = [meta[0]!, meta[1]!];
  let predictedTotal = 0, empiricalTotal = 0;
  for (let i = 0; i < 256; i++) {
    const t = (x[i]! - mn) / step;
    const f = t - Math.floor(t);
    const variance = step * step * f * (1 - f);
    const mean = sum[i]! / K;
    assert.ok(Math.abs(mean) <= 4 * Math.sqrt(variance / K) + step * 2 ** -16, `element ${i}: mean error ${mean}`);
    predictedTotal += variance;
    empiricalTotal += sq[i]! / K - mean * mean;
  }
  // Summed over the group (per element the 10,000-sample variance estimate itself scatters by ~3%).
  assert.ok(Math.abs(empiricalTotal / predictedTotal - 1) < 0.05, `variance ${empiricalTotal} vs Δ²f(1−f) ${predictedTotal}`);
});

test('noise is keyed by (seed, stream, step, element): reproducible, and different keys differ', () => {
  const x = randomValues(3000, 13);
  const layout = { rows: 3, rowLength: 1000, groupSize: 128 };
  const a = encode(x, layout, 2, { seed: 1, stream: 4, step: 9 }).codes;
  assert.deepEqual(encode(x, layout, 2, { seed: 1, stream: 4, step: 9 }).codes, a);
  for (const other of [{ seed: 2, stream: 4, step: 9 }, { seed: 1, stream: 5, step: 9 }, { seed: 1, stream: 4, step: 10 }]) {
    assert.notDeepEqual(encode(x, layout, 2, other).codes, a);
  }
});

test('DIVISION: residual against the rounded LFC, error below one HFC step, unbiased', () => {
  const g = { n: 2, c: 3, h: 14, w: 10, block: 8 }; // ragged border blocks
  const size = g.n * g.c * g.h * g.w;
  const r = new Rng(21);
  const x = Float32Array.from({ length: size }, (_, i) => Math.sin(i / 40) * 3 + r.normal() * 0.1);
  const lfc = new Uint16Array(lfcLength(g));
  const residual = new Float32Array(size);
  divisionSplit(x, g, lfc, residual);
  const layout = hfcLayout(g);
  const K = 400;
  const mean = new Float64Array(size);
  const lastStep: number[] = [];
  for (let k = 0; k < K; k++) {
    const meta = new Float64Array(2 * groupCount(layout));
    groupMeta(residual, layout, 2, 'fp16', meta);
    const codes = new Uint8Array(codeBytes(size, 2));
    quantizeGroups(residual, layout, 2, { seed: 0, stream: 0, step: k }, meta, codes);
    const out = new Float32Array(size);
    divisionDecode(lfc, codes, meta, g, 2, out);
    for (let i = 0; i < size; i++) {
      const step = meta[2 * Math.floor(i / (g.h * g.w)) + 1]!;
      assert.ok(Math.abs(out[i]! - x[i]!) <= step * (1 + 1e-5) + 1e-6, `i=${i}`);
      mean[i]! += out[i]! / K;
    }
    for (let m = 0; m < layout.rows; m++) lastStep[m] = meta[2 * m + 1]!;
  }
  for (let i = 0; i < size; i++) {
    const step = lastStep[Math.floor(i / (g.h * g.w))]!;
    assert.ok(Math.abs(mean[i]! - x[i]!) <= (5 * step) / (2 * Math.sqrt(K)) + 1e-6, `mean of ${K} decodes at ${i}: ${mean[i]} vs ${x[i]}`);
  }
});
