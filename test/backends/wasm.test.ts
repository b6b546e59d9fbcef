// The wasm kernels against the reference backend (the oracle), for every build this engine runs,
// single- and multi-threaded. Run `npm run build:kernels` first (npm test does).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { getBackend, kernels, setBackend } from '../../src/backends/index.js';
import type { Conv2dGeometry, GemmArgs } from '../../src/backends/kernels.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { loadKernelModule, useFastestBackend, WasmKernels, type KernelVariant } from '../../src/backends/wasm/index.js';
import { splitRange } from '../../src/backends/wasm/kernels.js';

const VARIANTS: KernelVariant[] = ['simd', 'scalar'];
const pools: WasmKernels[] = [];

function make(variant: KernelVariant, threads: number): WasmKernels {
  const module = loadKernelModule(variant);
  assert.ok(module, `build/${variant} kernels missing or not loadable: run npm run build:kernels`);
  const k = new WasmKernels(module);
  k.setThreads(threads);
  pools.push(k);
  return k;
}

after(() => pools.forEach((k) => k.shutdown()));

function random(n: number, seed: number): Tensor {
  const rng = new Rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.uniform() * 2 - 1;
  return fromValues(v, [n]);
}

/** Max |x - y| over two tensors' elements. */
function maxDiff(x: Tensor, y: Tensor): number {
  const a = x.values(), b = y.values();
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Runs one GEMM on `impl` and on the reference with the same inputs; returns both outputs. */
function gemmBoth(impl: WasmKernels, p: GemmArgs, seed: number): { got: Tensor; want: Tensor } {
  const aLen = (p.batch - 1) * p.aStride + p.m * p.k;
  const bLen = (p.batch - 1) * p.bStride + p.k * p.n;
  const a = random(aLen, seed), b = random(bLen, seed + 1);
  const got = random(p.batch * p.m * p.n, seed + 2);
  const want = fromValues(got.values(), got.shape);
  impl.gemm(a, b, got, p);
  referenceKernels.gemm(a, b, want, p);
  return { got, want };
}

/** Float32 tolerance for sums of k products of values in [-1, 1] (plus the accumulated C). */
const gemmTolerance = (k: number) => 2e-6 * (k + 2);

const gemmShape = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  m: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(1, 4, 5, 8, 33)),
  n: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(1, 7, 8, 9, 17)),
  k: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(1, 255, 257)),
  transA: fc.boolean(),
  transB: fc.boolean(),
  accumulate: fc.boolean(),
  broadcastA: fc.boolean(),
  broadcastB: fc.boolean(),
});

type GemmShape = typeof gemmShape extends fc.Arbitrary<infer T> ? T : never;

function args(s: GemmShape): GemmArgs {
  return {
    batch: s.batch, m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB, accumulate: s.accumulate,
    aStride: s.broadcastA ? 0 : s.m * s.k, bStride: s.broadcastB ? 0 : s.k * s.n,
  };
}

for (const variant of VARIANTS) {
  describe(`wasm kernels (${variant} build) vs reference`, () => {
    const k1 = make(variant, 1);

    test('gemm: random shapes, transposes, broadcast batches, accumulate', () => {
      fc.assert(
        fc.property(gemmShape, fc.integer({ min: 0, max: 1e6 }), (s, seed) => {
          const p = args(s);
          const { got, want } = gemmBoth(k1, p, seed);
          const d = maxDiff(got, want);
          assert.ok(d <= gemmTolerance(p.k), `${JSON.stringify(p)}: max diff ${d}`);
        }),
        { numRuns: 150 },
      );
    });

    test('gemm: shapes crossing the k, row and column blocks (KC=256, MC=128, NC=1024)', () => {
      for (const [m, n, k] of [[131, 1030, 260], [129, 9, 513]] as const) {
        for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const p: GemmArgs = { batch: 1, m, n, k, transA, transB, accumulate: transA, aStride: 0, bStride: 0 };
          const { got, want } = gemmBoth(k1, p, m + n);
          assert.ok(maxDiff(got, want) <= gemmTolerance(k), `${JSON.stringify(p)}`);
        }
      }
    });

    test('im2col and col2im: random geometries', () => {
      const geometry = fc
        .record({
          n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }),
          kh: fc.integer({ min: 1, max: 4 }), kw: fc.integer({ min: 1, max: 4 }),
          strideH: fc.integer({ min: 1, max: 3 }), strideW: fc.integer({ min: 1, max: 3 }),
          padH: fc.integer({ min: 0, max: 3 }), padW: fc.integer({ min: 0, max: 3 }),
          dilationH: fc.integer({ min: 1, max: 2 }), dilationW: fc.integer({ min: 1, max: 2 }),
        })
        .map((g): Conv2dGeometry => ({
          ...g,
          outH: Math.max(0, Math.floor((g.h + 2 * g.padH - g.dilationH * (g.kh - 1) - 1) / g.strideH) + 1),
          outW: Math.max(0, Math.floor((g.w + 2 * g.padW - g.dilationW * (g.kw - 1) - 1) / g.strideW) + 1),
        }));
      fc.assert(
        fc.property(geometry, fc.nat(), fc.nat(), fc.nat(), (g, imgSeed, c0Seed, seed) => {
          const img = imgSeed % g.n, c0 = c0Seed % g.c, cg = g.c - c0;
          const x = random(g.n * g.c * g.h * g.w, seed);
          const colsLen = cg * g.kh * g.kw * g.outH * g.outW;
          const got = random(colsLen, seed + 1), want = fromValues(got.values(), got.shape);
          k1.im2col(x, got, g, img, c0, cg);
          referenceKernels.im2col(x, want, g, img, c0, cg);
          assert.deepEqual(got.values(), want.values());

          const cols = random(colsLen, seed + 2);
          const dxGot = random(x.size, seed + 3), dxWant = fromValues(dxGot.values(), dxGot.shape);
          k1.col2im(cols, dxGot, g, img, c0, cg);
          referenceKernels.col2im(cols, dxWant, g, img, c0, cg);
          assert.ok(maxDiff(dxGot, dxWant) <= 1e-6 * g.kh * g.kw, `col2im ${JSON.stringify(g)}`);
        }),
        { numRuns: 200 },
      );
    });
  });
}

describe('wasm kernels: threads', () => {
  const single = make('simd', 1);
  const multi = make('simd', 3);

  test('multi-threaded GEMM is bit-identical to single-threaded (row, column and batch splits)', () => {
    const cases: GemmArgs[] = [
      { batch: 1, m: 300, n: 70, k: 90, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 },
      { batch: 1, m: 37, n: 520, k: 100, transA: true, transB: true, accumulate: true, aStride: 0, bStride: 0 },
      { batch: 5, m: 64, n: 60, k: 70, transA: false, transB: true, accumulate: false, aStride: 64 * 70, bStride: 0 },
    ];
    for (const p of cases) {
      const { got, want } = gemmBoth(multi, p, 7);
      assert.ok(maxDiff(got, want) <= gemmTolerance(p.k));
      const again = fromValues(new Float32Array(got.size), got.shape);
      const a = random((p.batch - 1) * p.aStride + p.m * p.k, 7), b = random((p.batch - 1) * p.bStride + p.k * p.n, 8);
      const seq = random(got.size, 9), par = fromValues(seq.values(), seq.shape);
      single.gemm(a, b, seq, p);
      multi.gemm(a, b, par, p);
      assert.deepEqual(par.values(), seq.values(), JSON.stringify(p));
      again.dispose();
    }
    assert.ok(multi.poolRunning, 'the pool should have started for GEMMs above the threshold');
  });

  test('multi-threaded im2col/col2im equal single-threaded', () => {
    const g: Conv2dGeometry = { n: 1, c: 16, h: 66, w: 66, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 66, outW: 66 };
    const x = random(16 * 66 * 66, 3);
    const colsLen = 16 * 9 * 66 * 66;
    const a = Tensor.empty([colsLen]), b = Tensor.empty([colsLen]);
    single.im2col(x, a, g, 0, 0, 16);
    multi.im2col(x, b, g, 0, 0, 16);
    assert.deepEqual(b.values(), a.values());
    const dx1 = Tensor.empty([x.size]), dx2 = Tensor.empty([x.size]);
    single.col2im(a, dx1, g, 0, 0, 16);
    multi.col2im(a, dx2, g, 0, 0, 16);
    assert.deepEqual(dx2.values(), dx1.values());
  });

  test('shutdown stops the pool and the next large job restarts it', () => {
    multi.shutdown();
    assert.equal(multi.poolRunning, false);
    const p: GemmArgs = { batch: 1, m: 128, n: 128, k: 128, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 };
    const { got, want } = gemmBoth(multi, p, 11);
    assert.ok(maxDiff(got, want) <= gemmTolerance(p.k));
    assert.ok(multi.poolRunning);
  });

  test('splitRange covers the range once with aligned inner boundaries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 16 }), fc.constantFrom(1, 4, 8), (total, parts, align) => {
        const r = splitRange(total, parts, align);
        assert.ok(r.length >= 1 && r.length <= parts);
        assert.equal(r[0]![0], 0);
        assert.equal(r.at(-1)![1], total);
        for (let i = 1; i < r.length; i++) {
          assert.equal(r[i]![0], r[i - 1]![1]);
          assert.equal(r[i]![0] % align, 0);
        }
      }),
    );
  });
});

describe('wasm backend: checks and selection', () => {
  const k = make('simd', 1);

  test('gemm rejects tensors too small for the arguments, naming the operand', () => {
    const a = Tensor.empty([6]), b = Tensor.empty([6]), c = Tensor.empty([4]);
    const p: GemmArgs = { batch: 1, m: 2, n: 2, k: 3, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 };
    k.gemm(a, b, c, p);
    assert.throws(() => k.gemm(a, b, c, { ...p, batch: 2, aStride: 6 }), /gemm: A \[6\] has 6 elements, needs at least 12/);
    assert.throws(() => k.gemm(a, b, Tensor.empty([3]), p), /gemm: C \[3\]/);
    assert.throws(() => k.gemm(a, Tensor.empty([6], 'float64'), c, p), /gemm: B must be float32/);
    assert.throws(() => k.gemm(a, b, c, { ...p, m: 1.5 }), /gemm: m must be a non-negative integer/);
  });

  test('useFastestBackend selects wasm for float32 and keeps float64 on the reference', () => {
    const before = getBackend();
    try {
      assert.equal(useFastestBackend(), 'wasm');
      assert.notEqual(kernels('float32').gemm, referenceKernels.gemm);
      assert.equal(kernels('float64').gemm, referenceKernels.gemm);
      const p: GemmArgs = { batch: 1, m: 5, n: 6, k: 7, transA: false, transB: true, accumulate: false, aStride: 0, bStride: 0 };
      const a = random(35, 1), b = random(42, 2), got = Tensor.empty([30]), want = Tensor.empty([30]);
      kernels('float32').gemm(a, b, got, p);
      referenceKernels.gemm(a, b, want, p);
      assert.ok(maxDiff(got, want) <= gemmTolerance(7));
    } finally {
      setBackend(before);
    }
  });
});
