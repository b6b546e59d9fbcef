// The wasm SmartDeal decomposition kernels (kernels/smartdeal.ts through
// src/backends/wasm/smartdeal.ts) against their reference (quant/smartdeal-kernels.ts), bit for bit: the
// coefficient fit's max |Ce|, the power-of-two codes with their change count, and the basis step's
// normal equations, on random segments with values at the code thresholds, ±0, ±Inf and NaN, for
// the SIMD (segment = rank = 4 on f64x2) and scalar builds; and decompose on the wasm backend
// gives the reference backend's factors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Tensor } from '../../src/core/tensor.js';
import { getBackend, setBackend, useFastestBackend } from '../../src/backends/index.js';
import { SmartDealWasmKernels } from '../../src/backends/wasm/smartdeal.js';
import { decompose, pow2Thresholds, smartdealCodes, smartdealProject } from '../../src/quant/smartdeal.js';
import { Rng } from '../../src/util/rng.js';
import { splittingEngine } from '../helpers.js';

const filled = (shape: number[], dtype: 'float32' | 'float64' | 'int32', values: ArrayLike<number>): Tensor => {
  const t = Tensor.empty(shape, dtype);
  t.data().set(values);
  return t;
};
const bits = (t: Tensor): number[] => Array.from(new Uint8Array(t.data().buffer, t.data().byteOffset, t.data().byteLength));

/** Segments whose fits land on, just below and just above the code thresholds of emax (p = I), plus random ones and specials. */
function segments(r: Rng, rows: number, S: number, emax: number): Float32Array {
  const th = Array.from(pow2Thresholds(emax)), f32 = Math.fround;
  const edges = th.flatMap((t) => [t, -t, f32(t), f32(t) * (1 - 2 ** -23), f32(t) * (1 + 2 ** -23)]);
  const special = [0, -0, Infinity, -Infinity, NaN, 2 ** (emax + 3), 2 ** (emax - 12)];
  return Float32Array.from({ length: rows * S }, () => {
    const u = r.uniform();
    return u < 0.3 ? edges[r.int(edges.length)]! : u < 0.33 ? special[r.int(special.length)]! : r.normal() * 2 ** emax;
  });
}

for (const variant of ['simd-relaxed', 'simd', 'scalar'] as const) {
  test(`wasm smartdealProject / smartdealCodes (${variant}) equal the reference bit for bit`, () => {
    const k = new SmartDealWasmKernels(splittingEngine(variant, 1));
    fc.assert(
      fc.property(fc.constantFrom([4, 4], [4, 2], [3, 3], [6, 5], [1, 1]), fc.integer({ min: 0, max: 70 }), fc.integer({ min: -30, max: 10 }), fc.nat(), ([S, rank], rows, emax, seed) => {
        const r = new Rng(seed);
        const w = filled([rows, S], 'float32', segments(r, rows, S, emax));
        // p = I on the first rows (fits = the values themselves), then random.
        const p = filled([rank, S], 'float64', Array.from({ length: rank * S }, (_, i) => (seed % 3 === 0 ? (i % S === Math.floor(i / S) ? 1 : 0) : r.normal())));
        assert.ok(Object.is(k.smartdealProject(w, p), smartdealProject(w, p)), 'max |Ce|');
        const start = Array.from({ length: rows * rank }, () => r.int(16));
        const sumsStart = Array.from({ length: rank * rank + rank * S }, () => (r.uniform() < 0.5 ? 0 : r.normal()));
        for (const withSums of [false, true]) {
          const [cg, cw] = [filled([rows, rank], 'int32', start), filled([rows, rank], 'int32', start)];
          const [sg, sw] = [filled([sumsStart.length], 'float64', sumsStart), filled([sumsStart.length], 'float64', sumsStart)];
          // Not always the fits' own emax; now and then one past the exponents the kernel forms (the reference runs).
          const e = seed % 11 === 0 ? -1020 : emax + (seed % 5) - 2;
          assert.equal(k.smartdealCodes(w, p, cg, withSums ? sg : null, e), smartdealCodes(w, p, cw, withSums ? sw : null, e), 'changed codes');
          assert.deepEqual(Array.from(cg.data()), Array.from(cw.data()), 'codes');
          assert.deepEqual(bits(sg), bits(sw), 'sums');
          for (const t of [cg, cw, sg, sw]) t.dispose();
        }
        for (const t of [w, p]) t.dispose();
      }),
      { numRuns: 80 },
    );
  });
}

test('decompose gives the same factors on the wasm and the reference backend and on float64 weights (the reference)', async () => {
  await useFastestBackend();
  const prev = getBackend(), r = new Rng(11);
  try {
    for (const [outC, K, scale] of [[16, 150, 0.1], [120, 40, 1e-3], [7, 9, 1e30], [5, 12, 1e-38]] as const) {
      const w = Float32Array.from({ length: outC * K }, () => r.normal() * scale);
      setBackend('reference');
      const want = decompose(w, outC, K, { sparsity: 0.3 });
      setBackend(prev);
      assert.deepEqual(decompose(w, outC, K, { sparsity: 0.3 }), want, `[${outC} x ${K}] scale ${scale}`);
      assert.deepEqual(decompose(Float64Array.from(w), outC, K, { sparsity: 0.3 }), want, `float64 [${outC} x ${K}]`);
    }
  } finally {
    setBackend(prev);
  }
});

test('smartdeal kernels name the argument at fault', () => {
  const w = Tensor.empty([3, 4]), p = Tensor.empty([2, 4], 'float64');
  assert.throws(() => smartdealProject(w, Tensor.empty([2, 3], 'float64')), /smartdealProject: w must be \[rows, S\] and p float64 \[r, S\]/);
  assert.throws(() => smartdealCodes(w, p, Tensor.empty([3, 2]), null, 0), /smartdealCodes: codes must be int32 \[3, 2\]/);
  assert.throws(() => smartdealCodes(w, p, Tensor.empty([3, 2], 'int32'), Tensor.empty([3], 'float64'), 0), /smartdealCodes: sums must be float64 of 12 elements/);
});
