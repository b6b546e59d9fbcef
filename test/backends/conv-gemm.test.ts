// The implicit-GEMM convolution kernel (convGemm: kernels/gemm.ts packing the im2col columns
// straight from the image) against the reference's definition, on random geometries (fast-check)
// and on shapes large enough for several k and column blocks of the GEMM, for the SIMD and scalar
// builds; split across 3 threads it must give the same bits as on one.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import type { Conv2dGeometry, ConvGemmArgs } from '../../src/backends/kernels.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { loadKernelModule, WasmKernels, type KernelVariant } from '../../src/backends/wasm/index.js';

const engines: WasmKernels[] = [];
after(() => engines.forEach((e) => e.shutdown()));

function make(variant: KernelVariant, threads: number): WasmKernels {
  const module = loadKernelModule(variant);
  assert.ok(module, `build/${variant} kernels missing: run npm run build:kernels`);
  const engine = new WasmKernels(module);
  engine.setThreads(threads);
  engine.minSplitNs = 0; // split every call: the threaded paths run on small shapes
  engines.push(engine);
  return engine;
}

function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1);
}

interface Case {
  g: Conv2dGeometry;
  p: ConvGemmArgs;
}

/** A, x and C (C holding random values, which count only with accumulate) for one case. */
function operands({ g, p }: Case, seed: number): [Tensor, Tensor, Tensor] {
  const kk = p.cg * g.kh * g.kw, hw = g.outH * g.outW;
  const aSize = (p.images - 1) * p.aStride + p.m * (p.weightGrad ? hw : kk);
  const cSize = p.weightGrad ? p.m * kk : (p.images - 1) * p.cStride + p.m * hw;
  return [fromValues(values(aSize, seed), [aSize]), fromValues(values(g.n * g.c * g.h * g.w, seed + 1), [g.n, g.c, g.h, g.w]), fromValues(values(cSize, seed + 2), [cSize])];
}

/** Runs convGemm on `k` (a fresh C each time) and returns C. */
function run(k: Pick<WasmKernels, 'convGemm'>, c: Case, seed: number): Float32Array {
  const [a, x, out] = operands(c, seed);
  k.convGemm!(a, x, out, c.g, c.p);
  const result = Float32Array.from(out.data() as Float32Array);
  for (const t of [a, x, out]) t.dispose();
  return result;
}

function check(fast: WasmKernels, threaded: WasmKernels, c: Case, seed: number): void {
  const want = run(referenceKernels, c, seed), got = run(fast, c, seed), split = run(threaded, c, seed);
  const label = JSON.stringify(c);
  assert.deepEqual(split, got, `3 threads differ from 1: ${label}`);
  const kk = c.p.cg * c.g.kh * c.g.kw, reach = c.p.weightGrad ? c.g.outH * c.g.outW : kk;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    assert.ok(err <= 1e-5 * (reach + 1), `${label}: C[${i}] = ${got[i]}, want ${want[i]}`);
  }
}

const arbitraryCase = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 1, max: 6 }), h: fc.integer({ min: 1, max: 20 }), w: fc.integer({ min: 1, max: 40 }),
    kh: fc.integer({ min: 1, max: 4 }), kw: fc.integer({ min: 1, max: 4 }), sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }),
    ph: fc.integer({ min: 0, max: 3 }), pw: fc.integer({ min: 0, max: 3 }), dh: fc.integer({ min: 1, max: 2 }), dw: fc.integer({ min: 1, max: 2 }),
    m: fc.integer({ min: 1, max: 9 }), c0: fc.nat(5), cg: fc.integer({ min: 1, max: 6 }), img: fc.nat(2), images: fc.integer({ min: 1, max: 3 }),
    gaps: fc.nat(3), weightGrad: fc.boolean(), flip: fc.boolean(), accumulate: fc.boolean(),
  })
  .map((r) => ({ ...r, outH: Math.floor((r.h + 2 * r.ph - r.dh * (r.kh - 1) - 1) / r.sh) + 1, outW: Math.floor((r.w + 2 * r.pw - r.dw * (r.kw - 1) - 1) / r.sw) + 1 }))
  .filter((r) => r.outH > 0 && r.outW > 0 && r.c0 + r.cg <= r.c && r.img + r.images <= r.n)
  .map((r): Case => {
    const kk = r.cg * r.kh * r.kw, hw = r.outH * r.outW;
    return {
      g: { n: r.n, c: r.c, h: r.h, w: r.w, kh: r.kh, kw: r.kw, strideH: r.sh, strideW: r.sw, padH: r.ph, padW: r.pw, dilationH: r.dh, dilationW: r.dw, outH: r.outH, outW: r.outW },
      p: {
        img: r.img, images: r.images, c0: r.c0, cg: r.cg, m: r.m, weightGrad: r.weightGrad, flip: r.flip, accumulate: r.accumulate,
        // A and C per image, `gaps` elements apart beyond their size (0 for A: a broadcast weight, as the forward passes it)
        aStride: r.weightGrad ? r.m * hw + r.gaps : r.gaps === 0 ? 0 : r.m * kk + r.gaps, cStride: r.weightGrad ? 0 : r.m * hw + r.gaps,
      },
    };
  });

/** ResNet-20-like layers past one k block (KC = 256) or one column block (NC = 1024) of the GEMM. */
const LARGE: Case[] = [
  { g: { n: 2, c: 32, h: 8, w: 8, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 8, outW: 8 }, p: { img: 0, images: 2, c0: 0, cg: 32, m: 12, aStride: 0, cStride: 12 * 64, weightGrad: false, flip: false, accumulate: false } },
  { g: { n: 2, c: 3, h: 36, w: 34, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 36, outW: 34 }, p: { img: 1, images: 1, c0: 0, cg: 3, m: 5, aStride: 0, cStride: 0, weightGrad: false, flip: true, accumulate: false } },
  { g: { n: 2, c: 4, h: 34, w: 32, kh: 3, kw: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 17, outW: 16 }, p: { img: 0, images: 2, c0: 1, cg: 3, m: 6, aStride: 6 * 272, cStride: 0, weightGrad: true, flip: false, accumulate: true } },
  { g: { n: 1, c: 30, h: 20, w: 24, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 20, outW: 24 }, p: { img: 0, images: 1, c0: 0, cg: 30, m: 7, aStride: 0, cStride: 0, weightGrad: true, flip: false, accumulate: false } },
];

for (const variant of ['simd-relaxed', 'simd', 'scalar'] as const) {
  describe(`convGemm (${variant})`, () => {
    const one = make(variant, 1), three = make(variant, 3);
    test('random geometries, both directions, flipped windows: the reference definition, the same bits on 3 threads', () => {
      fc.assert(fc.property(arbitraryCase, fc.nat(1000), (c, seed) => check(one, three, c, seed)), { numRuns: 40, seed: 17 });
    });
    test('layers over several k and column blocks of the GEMM', () => {
      LARGE.forEach((c, i) => check(one, three, c, i));
    });
  });
}

test('convGemm checks its operands: a window outside the images or a short C is a RangeError naming the kernel', () => {
  const k = make('simd', 1);
  const [a, x, out] = operands(LARGE[0]!, 1);
  assert.throws(() => k.convGemm(a, x, out, LARGE[0]!.g, { ...LARGE[0]!.p, images: 3 }), /convGemm: images \[0, 3\)/);
  assert.throws(() => k.convGemm(a, x, out, LARGE[0]!.g, { ...LARGE[0]!.p, images: 0 }), /convGemm: images must be >= 1/);
  const short = Tensor.empty([10]);
  assert.throws(() => k.convGemm(a, x, short, LARGE[0]!.g, LARGE[0]!.p), /convGemm: C \[10\] has 10 elements/);
  for (const t of [a, x, out, short]) t.dispose();
});
