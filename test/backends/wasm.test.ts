// The wasm kernels against the reference backend (the oracle), for every build this engine runs,
// single- and multi-threaded. Run `npm run build:kernels` first (npm test does).
// Every assert.ok has a message: without one, a failing assert.ok makes Node re-parse the
// (tsx-transformed) source to print the expression, which can spin for minutes.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { getBackend, kernels, setBackend } from '../../src/backends/index.js';
import { BINARY_OPS, type ChannelLayout, type Conv2dGeometry, type GemmArgs } from '../../src/backends/kernels.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { kernelVariants, loadKernelModule, quantWasmFile, useFastestBackend, wasmVariant, WasmKernels, type KernelVariant } from '../../src/backends/wasm/index.js';
import { kernelBinary, kernelImports, type KernelExports } from '../../src/backends/wasm/loader.js';
import { splitRange } from '../../src/backends/wasm/kernels.js';
import { codeBytes, groupCount, metaFromRanges, type CodeBits } from '../../src/compress/quantize.js';

const VARIANTS: KernelVariant[] = ['simd-relaxed', 'simd', 'scalar'];
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

/** Runs every per-channel, activation, binary and optimizer kernel on `impl` and on the reference for one layout; returns both outputs by name. */
function elementwiseKernelsBoth(impl: WasmKernels, layout: ChannelLayout, seed: number): Record<string, { got: Tensor; want: Tensor }> {
  const n = layout.outer * layout.channels * layout.inner, C = layout.channels;
  const rng = new Rng(seed);
  // An offset per channel so that the two-pass variance matters.
  const xv = Float32Array.from({ length: n }, (_, i) => rng.uniform() * 2 - 1 + (Math.floor(i / layout.inner) % C) * 0.5);
  const x = fromValues(xv, [n]), g = random(n, seed + 1);
  const out: Record<string, { got: Tensor; want: Tensor }> = {};
  const pair = (len: number, dtype: 'float32' | 'uint8' = 'float32') => ({ got: Tensor.empty([len], dtype), want: Tensor.empty([len], dtype) });
  const mean = pair(C), variance = pair(C);
  impl.channelMoments(x, mean.got, variance.got, layout);
  referenceKernels.channelMoments(x, mean.want, variance.want, layout);
  Object.assign(out, { mean, variance });
  const scale = random(C, seed + 2), shift = random(C, seed + 3), uScale = random(C, seed + 4);
  const plain = pair(n), withU = pair(n);
  impl.channelAffine(x, plain.got, { mean: mean.want, scale, shift }, layout);
  referenceKernels.channelAffine(x, plain.want, { mean: mean.want, scale, shift }, layout);
  impl.channelAffine(x, withU.got, { mean: mean.want, scale, shift, u: g, uScale }, layout);
  referenceKernels.channelAffine(x, withU.want, { mean: mean.want, scale, shift, u: g, uScale }, layout);
  const sumG = pair(C), sumGXhat = pair(C);
  impl.channelGradSums(g, x, mean.want, scale, sumG.got, sumGXhat.got, layout);
  referenceKernels.channelGradSums(g, x, mean.want, scale, sumG.want, sumGXhat.want, layout);
  Object.assign(out, { plain, withU, sumG, sumGXhat });
  for (const slope of [0, 0.1]) {
    const y = pair(n), mask = pair(n, 'uint8'), yNoMask = pair(n), masked = pair(n);
    impl.reluMask(x, y.got, mask.got, slope);
    referenceKernels.reluMask(x, y.want, mask.want, slope);
    impl.reluMask(x, yNoMask.got, null, slope);
    referenceKernels.reluMask(x, yNoMask.want, null, slope);
    impl.maskMul(g, mask.want, masked.got, slope);
    referenceKernels.maskMul(g, mask.want, masked.want, slope);
    Object.assign(out, { [`relu${slope}`]: y, [`reluMask${slope}`]: mask, [`reluNoMask${slope}`]: yNoMask, [`maskMul${slope}`]: masked });
  }
  // binary with b the same size as a and with b one repeated [channels * inner] row; then in place.
  const row = random(C * layout.inner, seed + 5);
  for (const op of BINARY_OPS) {
    for (const [label, b] of [['same', g], ['row', row]] as const) {
      const r = pair(n);
      impl.binary(op, x, b, r.got);
      referenceKernels.binary(op, x, b, r.want);
      out[`${op}-${label}`] = r;
    }
    const inPlace = { got: fromValues(x.values(), [n]), want: fromValues(x.values(), [n]) };
    impl.binary(op, inPlace.got, row, inPlace.got);
    referenceKernels.binary(op, inPlace.want, row, inPlace.want);
    out[`${op}-inplace`] = inPlace;
  }
  // Optimizer steps update (w, state) in place: the same starting values on both sides.
  const twin = (t: Tensor) => ({ got: fromValues(t.values(), t.shape), want: fromValues(t.values(), t.shape) });
  for (const [label, momentum, nesterov, first] of [['plain', 0, false, false], ['first', 0.9, false, true], ['nesterov', 0.9, true, false]] as const) {
    const w = twin(x), buf = twin(random(n, seed + 6));
    const step = { lr: 0.05, momentum, weightDecay: 0.01, nesterov, first };
    impl.sgdUpdate(w.got, g, momentum ? buf.got : null, step);
    referenceKernels.sgdUpdate(w.want, g, momentum ? buf.want : null, step);
    Object.assign(out, { [`sgd-${label}-w`]: w, [`sgd-${label}-buf`]: buf });
  }
  for (const decoupled of [false, true]) {
    const w = twin(x), m = twin(random(n, seed + 7)), v = twin(random(n, seed + 8));
    for (const t of [v.got, v.want]) (t.data() as Float32Array).forEach((e, i, a) => (a[i] = e * e));
    const step = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled, stepSize: 1e-3 / (1 - 0.9 ** 3), invC2: 1 / Math.sqrt(1 - 0.999 ** 3) };
    impl.adamUpdate(w.got, g, m.got, v.got, step);
    referenceKernels.adamUpdate(w.want, g, m.want, v.want, step);
    Object.assign(out, { [`adam-${decoupled}-w`]: w, [`adam-${decoupled}-m`]: m, [`adam-${decoupled}-v`]: v });
  }
  return out;
}

/** Max |got - want| / (1 + |want|). */
function maxRelDiff(got: Tensor, want: Tensor): number {
  const a = got.values(), b = want.values();
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return d;
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

    test('codec kernels: ranges, quantize (stochastic and nearest) and dequantize bit for bit, ragged groups, ±0 and NaN', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 300 }), fc.constantFrom(1, 7, 16, 33, 64, 256),
          fc.constantFrom<CodeBits>(1, 2, 4, 8), fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
          (rows, rowLength, groupSize, bits, stochastic, seed) => {
            const l = { rows, rowLength, groupSize }, n = rows * rowLength;
            const x = random(n, seed), v = x.data();
            v[seed % n] = -0;
            if (n > 3) v[(seed >> 3) % n] = 0;
            if (n > 5) v[(seed >> 5) % n] = NaN;
            if (seed % 5 === 0) v[(seed >> 7) % n] = 1e6; // beyond fp16: groupQuantize's fp16 call fails
            const both = <T>(f: (k: typeof k1 | typeof referenceKernels) => T): [T, T] => [f(k1), f(referenceKernels)];
            const [rg, rr] = both((k) => {
              const r = Tensor.empty([2 * groupCount(l)], 'float64');
              k.groupRanges(x, r, l);
              return r;
            });
            assert.deepEqual(rg.values(), rr.values());
            metaFromRanges(rg.data() as Float64Array, bits, 'fp32');
            const noise = stochastic ? { seed: seed + 1, stream: 3, step: 7 } : null;
            const [cg, cr] = both((k) => {
              const c = Tensor.empty([codeBytes(n, bits)], 'uint8');
              k.quantizeGroups(x, rg, c, l, bits, noise);
              return c;
            });
            assert.deepEqual(cg.values(), cr.values(), `codes ${JSON.stringify({ l, bits, stochastic })}`);
            const meta32 = fromValues(Float32Array.from(rg.values()), [2 * groupCount(l)]);
            const [dg, dr] = both((k) => {
              const out = Tensor.empty([n], 'float32');
              k.dequantizeGroups(cg, meta32, out, l, bits);
              return out;
            });
            const bitsOf = (t: Tensor) => new Uint32Array(Float32Array.from(t.values()).buffer);
            assert.deepEqual(bitsOf(dg), bitsOf(dr), `decoded ${JSON.stringify({ l, bits })}`);
            // The one-pass kernel: the same metadata (fp16 and fp32) and codes as ranges + metaFromRanges + quantize.
            for (const precision of ['fp16', 'fp32'] as const) {
              const [[okg, mg, qg], [okr, mr, qr]] = both((k) => {
                const m = Tensor.empty([2 * groupCount(l)], 'float64'), c = Tensor.empty([codeBytes(n, bits)], 'uint8');
                return [k.groupQuantize(x, m, c, l, bits, noise, precision), m, c] as const;
              });
              assert.equal(okg, okr, `fp16 fallback ${JSON.stringify({ l, precision })}`);
              if (!okr) continue;
              assert.deepEqual(mg.values(), mr.values(), `groupQuantize meta ${JSON.stringify({ l, bits, precision })}`);
              assert.deepEqual(qg.values(), qr.values(), `groupQuantize codes ${JSON.stringify({ l, bits, precision, stochastic })}`);
              if (precision === 'fp32') assert.deepEqual(qg.values(), cg.values(), 'fp32 groupQuantize = quantizeGroups on the fp32 metadata');
            }
          },
        ),
        { numRuns: 120 },
      );
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

    test('per-channel (batch-norm) and ReLU/mask kernels: random layouts', () => {
      const layout = fc.record({ outer: fc.integer({ min: 1, max: 4 }), channels: fc.integer({ min: 1, max: 5 }), inner: fc.integer({ min: 1, max: 19 }) });
      fc.assert(
        fc.property(layout, fc.nat(), (l, seed) => {
          for (const [name, { got, want }] of Object.entries(elementwiseKernelsBoth(k1, l, seed))) {
            assert.ok(maxRelDiff(got, want) <= 1e-5, `${name} ${JSON.stringify(l)}: max relative error ${maxRelDiff(got, want)}`);
          }
        }),
        { numRuns: 100 },
      );
    });

    test('maxPool2d 2x2 stride 2 and its gradient (the fast paths; four windows per SIMD step plus a tail): ties, -Infinity, NaN, -0 and odd sizes', () => {
      for (const [h, w] of [[8, 8], [7, 9], [2, 2], [6, 22], [28, 28], [10, 10]] as const) {
        const g: Conv2dGeometry = { n: 2, c: 3, h, w, kh: 2, kw: 2, strideH: 2, strideW: 2, padH: 0, padW: 0, dilationH: 1, dilationW: 1, outH: Math.floor(h / 2), outW: Math.floor(w / 2) };
        const rng = new Rng(h * 31 + w);
        const xv = Float32Array.from({ length: 2 * 3 * h * w }, () => [-Infinity, -1, 0, 0.5, 2, NaN][rng.int(6)]!);
        const x = fromValues(xv, [xv.length]);
        const outLen = 2 * 3 * g.outH * g.outW;
        const got = Tensor.empty([outLen]), want = Tensor.empty([outLen]);
        const gotIdx = Tensor.empty([outLen], 'uint8'), wantIdx = Tensor.empty([outLen], 'uint8');
        k1.maxPool2d(x, got, gotIdx, g);
        referenceKernels.maxPool2d(x, want, wantIdx, g);
        assert.deepEqual(got.values(), want.values(), `values ${h}x${w}`);
        assert.deepEqual(gotIdx.values(), wantIdx.values(), `indices ${h}x${w}`);
        // The gradient writes every element of dx (odd last rows/columns too) over whatever it held; -0 lands as +0.
        const gy = fromValues(Float32Array.from({ length: outLen }, () => [-0, 1.5, -2, 0][rng.int(4)]!), [outLen]);
        const dxGot = fromValues(new Float32Array(xv.length).fill(NaN), [xv.length]), dxWant = fromValues(new Float32Array(xv.length).fill(7), [xv.length]);
        k1.maxPool2dGrad(gy, gotIdx, dxGot, g);
        referenceKernels.maxPool2dGrad(gy, wantIdx, dxWant, g);
        assert.deepEqual(dxGot.values(), dxWant.values(), `gradient ${h}x${w}`);
      }
    });

    test('maxPool2d and maxPool2dGrad: random geometries, ties, -Infinity and padding', () => {
      const geometry = fc
        .record({
          n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }),
          kh: fc.integer({ min: 1, max: 4 }), kw: fc.integer({ min: 1, max: 4 }),
          strideH: fc.integer({ min: 1, max: 3 }), strideW: fc.integer({ min: 1, max: 3 }),
          padH: fc.integer({ min: 0, max: 2 }), padW: fc.integer({ min: 0, max: 2 }),
        })
        .filter((g) => g.padH < g.kh && g.padW < g.kw && g.h + 2 * g.padH >= g.kh && g.w + 2 * g.padW >= g.kw)
        .map((g): Conv2dGeometry => ({
          ...g, dilationH: 1, dilationW: 1,
          outH: Math.floor((g.h + 2 * g.padH - g.kh) / g.strideH) + 1,
          outW: Math.floor((g.w + 2 * g.padW - g.kw) / g.strideW) + 1,
        }));
      fc.assert(
        fc.property(geometry, fc.nat(), (g, seed) => {
          // Values from a small set so that windows have ties; some -Infinity.
          const rng = new Rng(seed);
          const xv = Float32Array.from({ length: g.n * g.c * g.h * g.w }, () => [-Infinity, -1, 0, 0.5, 2][rng.int(5)]!);
          const x = fromValues(xv, [xv.length]);
          const outLen = g.n * g.c * g.outH * g.outW;
          const got = Tensor.empty([outLen]), want = Tensor.empty([outLen]);
          const gotIdx = Tensor.empty([outLen], 'uint8'), wantIdx = Tensor.empty([outLen], 'uint8');
          k1.maxPool2d(x, got, gotIdx, g);
          referenceKernels.maxPool2d(x, want, wantIdx, g);
          assert.deepEqual(got.values(), want.values());
          assert.deepEqual(gotIdx.values(), wantIdx.values());

          const gy = random(outLen, seed + 1);
          const dxGot = random(x.size, seed + 2), dxWant = fromValues(dxGot.values(), dxGot.shape);
          k1.maxPool2dGrad(gy, gotIdx, dxGot, g);
          referenceKernels.maxPool2dGrad(gy, wantIdx, dxWant, g);
          assert.deepEqual(dxGot.values(), dxWant.values());
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
      { batch: 1, m: 300, n: 70, k: 256, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 },
      { batch: 1, m: 37, n: 520, k: 280, transA: true, transB: true, accumulate: true, aStride: 0, bStride: 0 },
      { batch: 5, m: 64, n: 60, k: 280, transA: false, transB: true, accumulate: false, aStride: 64 * 280, bStride: 0 },
    ];
    for (const p of cases) {
      assert.ok(p.batch * p.m * p.n * p.k >= multi.splitAt('gemm'), `${JSON.stringify(p)} is below the split threshold`);
      const { got, want } = gemmBoth(multi, p, 7);
      assert.ok(maxDiff(got, want) <= gemmTolerance(p.k), `threads vs reference: ${JSON.stringify(p)}`);
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

  test('im2col/col2im over several images (threads) equal one image at a time and the reference', () => {
    // Large enough (4 images x 4 channels x 9 x 48 x 48 > 2^18 elements) to split across threads.
    const g: Conv2dGeometry = { n: 5, c: 6, h: 48, w: 48, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 48, outW: 48 };
    const x = random(5 * 6 * 48 * 48, 4);
    const block = 4 * 9 * 48 * 48; // channels [1, 5) of one image
    const many = Tensor.empty([4 * block]), one = Tensor.empty([4 * block]), want = Tensor.empty([4 * block]);
    multi.im2col(x, many, g, 1, 1, 4, 4);
    referenceKernels.im2col(x, want, g, 1, 1, 4, 4);
    for (let k = 0; k < 4; k++) {
      const view = one.view([block], undefined, k * block);
      single.im2col(x, view, g, 1 + k, 1, 4);
      view.dispose();
    }
    assert.deepEqual(many.values(), one.values());
    assert.deepEqual(many.values(), want.values());
    const dxMany = Tensor.empty([x.size]), dxWant = Tensor.empty([x.size]);
    multi.col2im(many, dxMany, g, 1, 1, 4, 4);
    referenceKernels.col2im(many, dxWant, g, 1, 1, 4, 4);
    assert.ok(maxDiff(dxMany, dxWant) <= 1e-5, 'col2im over several images vs reference');
  });

  test('multi-threaded per-channel and ReLU/mask kernels equal single-threaded', () => {
    const layout: ChannelLayout = { outer: 8, channels: 16, inner: Math.ceil(multi.splitAt('elementwise') / 128) + 33 };
    const a = elementwiseKernelsBoth(single, layout, 11), b = elementwiseKernelsBoth(multi, layout, 11);
    for (const name of Object.keys(a)) assert.deepEqual(b[name]!.got.values(), a[name]!.got.values(), name);
  });

  test('multi-threaded max pooling equals single-threaded', () => {
    const g: Conv2dGeometry = { n: 8, c: 16, h: 32, w: 32, kh: 3, kw: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1, dilationW: 1, outH: 16, outW: 16 };
    assert.ok(8 * 16 * 16 * 16 * 9 >= multi.splitAt('pool'), 'below the split threshold');
    const x = random(8 * 16 * 32 * 32, 5);
    const outLen = 8 * 16 * 16 * 16;
    const o1 = Tensor.empty([outLen]), o2 = Tensor.empty([outLen]);
    const i1 = Tensor.empty([outLen], 'uint8'), i2 = Tensor.empty([outLen], 'uint8');
    single.maxPool2d(x, o1, i1, g);
    multi.maxPool2d(x, o2, i2, g);
    assert.deepEqual(o2.values(), o1.values());
    assert.deepEqual(i2.values(), i1.values());
    const d1 = Tensor.empty([x.size]), d2 = Tensor.empty([x.size]);
    single.maxPool2dGrad(o1, i1, d1, g);
    multi.maxPool2dGrad(o1, i1, d2, g);
    assert.deepEqual(d2.values(), d1.values());
  });

  test('shutdown stops the pool and the next large job restarts it', () => {
    multi.shutdown();
    assert.equal(multi.poolRunning, false);
    const p: GemmArgs = { batch: 1, m: 128, n: 128, k: 320, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 };
    const { got, want } = gemmBoth(multi, p, 11);
    assert.ok(maxDiff(got, want) <= gemmTolerance(p.k), 'GEMM after a pool restart differs from the reference');
    assert.ok(multi.poolRunning, 'the pool should have restarted');
  });

  test('splitRange covers the range once with aligned inner boundaries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 16 }), fc.constantFrom(1, 4, 8), (total, parts, align) => {
        const r = splitRange(total, parts, align);
        assert.ok(r.length >= 1 && r.length <= parts, `${r.length} ranges for ${parts} parts`);
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
      assert.equal(wasmVariant(), 'simd-relaxed', 'this engine validates wasm (relaxed) SIMD, so the relaxed SIMD build should be chosen');
      assert.notEqual(kernels('float32').gemm, referenceKernels.gemm);
      assert.equal(kernels('float64').gemm, referenceKernels.gemm);
      const p: GemmArgs = { batch: 1, m: 5, n: 6, k: 7, transA: false, transB: true, accumulate: false, aStride: 0, bStride: 0 };
      const a = random(35, 1), b = random(42, 2), got = Tensor.empty([30]), want = Tensor.empty([30]);
      kernels('float32').gemm(a, b, got, p);
      referenceKernels.gemm(a, b, want, p);
      assert.ok(maxDiff(got, want) <= gemmTolerance(7), 'wasm backend GEMM differs from the reference');
    } finally {
      setBackend(before);
    }
  });
});

test('relaxed SIMD: the relaxed build fuses or not (both allowed), the SIMD build rounds twice; SLIMGRAD_RELAXED_SIMD=0 leaves it out', () => {
  // a·a = 1 + 2^-11 + 2^-24 rounds to 1 + 2^-11; a fused (-a)·a + that keeps the -2^-24 a second rounding loses.
  const a = 1 + 2 ** -12, fused = -(2 ** -24);
  const p: GemmArgs = { batch: 1, m: 1, n: 1, k: 2, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 };
  const run = (variant: KernelVariant) => {
    const c = Tensor.empty([1]);
    make(variant, 1).gemm(fromValues([a, -a], [2]), fromValues([a, a], [2]), c, p);
    return c.values()[0];
  };
  assert.equal(run('simd'), 0);
  assert.ok([0, fused].includes(run('simd-relaxed')!), `relaxed GEMM gave ${run('simd-relaxed')}`);
  const before = process.env.SLIMGRAD_RELAXED_SIMD;
  try {
    process.env.SLIMGRAD_RELAXED_SIMD = '0';
    assert.deepEqual([kernelVariants(true), kernelVariants(false), quantWasmFile()], [['simd', 'scalar'], ['simd-unshared'], 'quant.wasm']);
    delete process.env.SLIMGRAD_RELAXED_SIMD;
    assert.deepEqual([kernelVariants(true)[0], quantWasmFile()], ['simd-relaxed', 'quant-relaxed.wasm']);
  } finally {
    if (before === undefined) delete process.env.SLIMGRAD_RELAXED_SIMD;
    else process.env.SLIMGRAD_RELAXED_SIMD = before;
  }
});

test('the unshared-memory build (browsers without cross-origin isolation) runs on a plain memory', () => {
  const binary = kernelBinary('simd-unshared');
  assert.ok(binary, 'build/kernels-unshared.wasm missing: run npm run build:kernels');
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  assert.ok(!(memory.buffer instanceof SharedArrayBuffer), 'expected an unshared memory');
  const e = new WebAssembly.Instance(new WebAssembly.Module(binary), kernelImports(memory)).exports as unknown as KernelExports;
  memory.grow(Math.ceil(e.gemmScratchBytes() / 65536) + 1);
  const f = new Float32Array(memory.buffer);
  // A (2x3) = [[1,2,3],[4,5,6]], B (3x2) = [[1,0],[0,1],[1,1]] at float offsets 0, 8; C at 16; scratch at 64 KiB.
  f.set([1, 2, 3, 4, 5, 6], 0);
  f.set([1, 0, 0, 1, 1, 1], 8);
  e.gemm(0, 32, 64, 2, 2, 3, 0, 0, 0, 0, 1, 0, 2, 0, 2, 65536);
  assert.deepEqual([...f.subarray(16, 20)], [4, 5, 10, 11]);
});
