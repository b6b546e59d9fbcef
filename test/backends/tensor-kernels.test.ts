// The wasm tensor kernels (kernels/tensor.ts through src/backends/wasm/tensor.ts) against the
// reference backend, kernel by kernel on random shapes and values (fast-check), for the SIMD and
// scalar builds, single- and multi-threaded. Every assert.ok has a message (see wasm.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import type { Conv2dGeometry, UnaryOp } from '../../src/backends/kernels.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import type { KernelVariant } from '../../src/backends/wasm/index.js';
import { splittingEngine } from '../helpers.js';
import { copyAxes, TensorWasmKernels } from '../../src/backends/wasm/tensor.js';

const make = (variant: KernelVariant, threads: number): TensorWasmKernels => new TensorWasmKernels(splittingEngine(variant, threads));

function values(n: number, seed: number, spread = 4): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * spread);
}

/** Asserts |got - want| <= tol * max(1, |want|) elementwise (NaN and infinities must match exactly). */
function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (!Number.isFinite(w)) {
      assert.ok(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)), `${what}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    assert.ok(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)), `${what}[${i}]: got ${g}, want ${w}`);
  }
}

const UNARY: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'tanh', 'sigmoid', 'softplus', 'gelu', 'gelu_grad', 'mul_scalar', 'add_scalar', 'pow_scalar'];
/** Inputs where approximations break: range ends of exp, the tanh switch point, zeros, infinities. */
const EDGES = [0, -0, 1e-6, -1e-6, 0.29999, 0.3, -0.3, 0.31, 5, -5, 9.5, -9.5, 20, -20, 87, -87, 88.5, -88, 88.8, -88.8, 100, -100, 1e30, -1e30, Infinity, -Infinity, NaN];

const geometry = fc
  .record({ n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }), kh: fc.integer({ min: 1, max: 3 }), kw: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 3 }), pad: fc.integer({ min: 0, max: 1 }) })
  .filter((g) => g.h + 2 * g.pad >= g.kh && g.w + 2 * g.pad >= g.kw && g.pad < g.kh && g.pad < g.kw)
  .map((g): Conv2dGeometry => ({
    n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.s, strideW: g.s, padH: g.pad, padW: g.pad, dilationH: 1, dilationW: 1,
    outH: Math.floor((g.h + 2 * g.pad - g.kh) / g.s) + 1, outW: Math.floor((g.w + 2 * g.pad - g.kw) / g.s) + 1,
  }));

for (const variant of ['simd-relaxed', 'simd', 'scalar'] as const) {
  for (const threads of [1, 2]) {
    describe(`wasm tensor kernels (${variant}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const k = make(variant, threads);
      // Multi-threaded runs split every kernel (minSplitNs 0, set in make) and use larger sizes too.
      const big = threads > 1 ? 70_000 : 0;

      test('unary: every map matches the reference on random values and edge cases', () => {
        fc.assert(
          fc.property(fc.integer({ min: 0, max: 70 }), fc.nat(), fc.constantFrom(...UNARY), (n, seed, op) => {
            const v = values(n + big, seed);
            v.set(EDGES.slice(0, Math.min(EDGES.length, v.length)));
            if (op === 'log' || op === 'sqrt' || op === 'pow_scalar') v.forEach((e, i) => (v[i] = i < EDGES.length ? e : Math.abs(e)));
            const x = fromValues(v, [v.length]), got = Tensor.empty([v.length]), want = Tensor.empty([v.length]);
            const s = op === 'pow_scalar' ? 3 : 1.75;
            k.unary(op, x, got, s);
            referenceKernels.unary(op, x, want, s);
            close(got.values(), want.values(), 4e-6, op);
            // In place: out = x.
            k.unary(op, x, x, s);
            close(x.values(), want.values(), 4e-6, `${op} in place`);
          }),
          { numRuns: threads > 1 ? 12 : 60 },
        );
      });

      test('hardtanhMask: clamp and the strictly-inside mask, with and without a mask', () => {
        fc.assert(
          fc.property(fc.integer({ min: 0, max: 70 }), fc.nat(), fc.float({ min: -2, max: 0, noNaN: true }), fc.float({ min: 0, max: 2, noNaN: true }), (n, seed, lo, hi) => {
            const v = values(n + big, seed, 3);
            v.set([lo, hi, -Infinity, Infinity, NaN].slice(0, v.length));
            const x = fromValues(v, [v.length]);
            const yg = Tensor.empty([v.length]), yw = Tensor.empty([v.length]), mg = Tensor.empty([v.length], 'uint8'), mw = Tensor.empty([v.length], 'uint8');
            k.hardtanhMask(x, yg, mg, lo, hi);
            referenceKernels.hardtanhMask(x, yw, mw, lo, hi);
            close(yg.values(), yw.values(), 0, 'y');
            assert.deepEqual(mg.toArray(), mw.toArray(), 'mask');
            k.hardtanhMask(x, yg, null, lo, hi);
            close(yg.values(), yw.values(), 0, 'y without mask');
          }),
          { numRuns: threads > 1 ? 8 : 40 },
        );
      });

      test('dropout: the same mask and scale as the reference (Philox stream of uniformAt), bit for bit', () => {
        fc.assert(
          fc.property(fc.integer({ min: 0, max: 70 }), fc.nat(), fc.double({ min: 0, max: 0.95, noNaN: true }), fc.nat(), (n, seed, p, key) => {
            const x = fromValues(values(n + big, seed), [n + big]);
            const got = Tensor.empty([n + big]), want = Tensor.empty([n + big]);
            k.dropout(x, got, p, key);
            referenceKernels.dropout(x, want, p, key);
            assert.deepEqual(got.toArray(), want.toArray(), `p ${p} seed ${key}`);
          }),
          { numRuns: threads > 1 ? 6 : 40 },
        );
      });

      test('reduce: sum and max (with the first-maximum mask) over [outer, reduced, inner]', () => {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 11 }), fc.nat(), fc.boolean(), (outer, reduced, inner, seed, ties) => {
            const o = outer + (threads > 1 ? 600 : 0), n = o * reduced * inner;
            const v = values(n, seed);
            if (ties) v.forEach((e, i) => (v[i] = Math.round(e))); // repeated maxima: the first one wins
            const x = fromValues(v, [n]);
            const layout = { outer: o, reduced, inner };
            for (const op of ['sum', 'max'] as const) {
              const got = Tensor.empty([o * inner]), want = Tensor.empty([o * inner]);
              const mg = fromValues(new Uint8Array(n).fill(9), [n], 'uint8'), mw = Tensor.empty([n], 'uint8');
              k.reduce(op, x, got, layout, mg);
              referenceKernels.reduce(op, x, want, layout, mw);
              close(got.values(), want.values(), 1e-6, op);
              assert.deepEqual(mg.toArray(), mw.toArray(), `${op} mask`);
            }
          }),
          { numRuns: threads > 1 ? 8 : 60 },
        );
      });

      test('softmax and log-softmax rows, including -Infinity entries (causal masks) and large logits', () => {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 70 }), fc.nat(), fc.boolean(), (r, n, seed, masked) => {
            const rows = r + (threads > 1 ? Math.ceil(big / n) : 0);
            const v = values(rows * n, seed, 30);
            if (masked) for (let i = 0; i < v.length; i += 3) if (i % n !== 0) v[i] = -Infinity;
            const x = fromValues(v, [v.length]);
            for (const log of [false, true]) {
              const got = Tensor.empty([v.length]), want = Tensor.empty([v.length]);
              k.softmax(x, got, rows, n, log);
              referenceKernels.softmax(x, want, rows, n, log);
              close(got.values(), want.values(), 4e-6, log ? 'log-softmax' : 'softmax');
            }
          }),
          { numRuns: threads > 1 ? 8 : 60 },
        );
      });

      test('crossEntropy and its gradient; labels out of range are refused before any write', () => {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 40 }), fc.nat(), (rows, n, seed) => {
            const logits = fromValues(values(rows * n, seed, 20), [rows, n]);
            const rng = new Rng(seed + 1);
            const labels = fromValues(Int32Array.from({ length: rows }, () => rng.int(n)), [rows], 'int32');
            const pg = Tensor.empty([rows, n]), pw = Tensor.empty([rows, n]);
            const lg = k.crossEntropy(logits, labels, pg), lw = referenceKernels.crossEntropy(logits, labels, pw);
            close([lg], [lw], 2e-6, 'loss');
            close(pg.values(), pw.values(), 4e-6, 'probs');
            const gg = Tensor.empty([rows, n]), gw = Tensor.empty([rows, n]);
            k.crossEntropyGrad(pw, labels, gg, 1 / rows);
            referenceKernels.crossEntropyGrad(pw, labels, gw, 1 / rows);
            close(gg.values(), gw.values(), 1e-6, 'grad');
          }),
          { numRuns: 40 },
        );
        const bad = fromValues([0, 3], [2], 'int32'), probs = Tensor.empty([2, 3]);
        assert.throws(() => k.crossEntropy(Tensor.empty([2, 3]), bad, probs), /crossEntropy: labels\[1\] = 3 outside \[0, 3\)/);
        assert.throws(() => k.crossEntropyGrad(probs, bad, Tensor.empty([2, 3]), 1), /crossEntropyGrad: labels\[1\] = 3 outside/);
      });

      test('gatherRows and scatterAddRows (repeated ids accumulate); a bad id is refused and nothing is written', () => {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 19 }), fc.integer({ min: 0, max: 30 }), fc.nat(), (V, D, count, seed) => {
            const table = fromValues(values(V * D, seed), [V, D]);
            const rng = new Rng(seed + 2);
            const ids = fromValues(Int32Array.from({ length: count }, () => rng.int(V)), [count], 'int32');
            const og = Tensor.empty([count, D]), ow = Tensor.empty([count, D]);
            k.gatherRows(table, ids, og);
            referenceKernels.gatherRows(table, ids, ow);
            assert.deepEqual(og.toArray(), ow.toArray(), 'gather');
            const g = fromValues(values(count * D, seed + 3), [count, D]);
            const sg = fromValues(values(V * D, seed + 4), [V, D]), sw = fromValues(sg.values(), [V, D]);
            k.scatterAddRows(g, ids, sg);
            referenceKernels.scatterAddRows(g, ids, sw);
            close(sg.values(), sw.values(), 1e-6, 'scatter');
          }),
          { numRuns: 40 },
        );
        const table = fromValues([1, 2, 3, 4], [2, 2]), out = fromValues([7, 7, 7, 7], [2, 2]);
        assert.throws(() => k.gatherRows(table, fromValues([1, 2], [2], 'int32'), out), /gatherRows: ids\[1\] = 2 outside \[0, 2\)/);
        assert.deepEqual(out.toArray(), [7, 7, 7, 7]);
        assert.throws(() => k.scatterAddRows(table, fromValues([-1, 0], [2], 'int32'), out), /scatterAddRows: ids\[0\] = -1 outside/);
        assert.deepEqual(out.toArray(), [7, 7, 7, 7]);
      });

      test('copy: permuted, sliced and broadcast views of float32 and int32 match the reference', () => {
        fc.assert(
          fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 6 }), fc.nat(), fc.boolean(), fc.constantFrom('float32' as const, 'int32' as const), (shape, seed, broadcast, dtype) => {
            const rng = new Rng(seed);
            const size = shape.reduce((a, b) => a * b, 1);
            const base = fromValues(values(size, seed), shape, dtype);
            // A random permutation of the axes (a strided view), optionally broadcast along axes of size 1.
            const perm = shape.map((_, i) => i).sort(() => rng.uniform() - 0.5);
            let src = base.view(perm.map((p) => shape[p]!), perm.map((p) => base.strides[p]!), 0);
            let outShape = [...src.shape];
            if (broadcast) {
              const dims = src.shape.map((d) => (rng.uniform() < 0.4 ? 1 : d));
              src = src.view(dims, src.strides.map((s, i) => (dims[i] === 1 ? 0 : s)), 0);
              outShape = [rng.int(3) + 1, ...dims.map((d, i) => (d === 1 ? rng.int(3) + 1 : src.shape[i]!))];
            }
            // The destination is itself a slice (every other element of a wider buffer) half the time.
            const outSize = outShape.reduce((a, b) => a * b, 1);
            const strided = rng.uniform() < 0.5 && outShape.length > 0;
            const mk = () => {
              if (!strided) return Tensor.empty(outShape, dtype);
              const wide = Tensor.empty([outSize * 2], dtype);
              const st: number[] = [];
              let acc = 2;
              for (let i = outShape.length - 1; i >= 0; i--) {
                st[i] = acc;
                acc *= outShape[i]!;
              }
              return wide.view(outShape, st, 1);
            };
            const got = mk(), want = mk();
            k.copy(src, got);
            referenceKernels.copy(src, want);
            assert.deepEqual(got.toArray(), want.toArray(), `shape ${shape} perm ${perm} -> ${outShape}`);
          }),
          { numRuns: 80 },
        );
      });

      test('channelAdd and average pooling (forward and adjoint) match the reference', () => {
        fc.assert(
          fc.property(geometry, fc.nat(), (g, seed) => {
            const planes = g.n * g.c;
            const x = fromValues(values(planes * g.h * g.w, seed), [planes * g.h * g.w]);
            const og = Tensor.empty([planes * g.outH * g.outW]), ow = Tensor.empty([planes * g.outH * g.outW]);
            k.avgPool2d(x, og, g);
            referenceKernels.avgPool2d(x, ow, g);
            close(og.values(), ow.values(), 1e-6, 'avgPool2d');
            const gy = fromValues(values(og.size, seed + 1), [og.size]);
            const dg = fromValues(values(x.size, seed + 2), [x.size]), dw = fromValues(dg.values(), [x.size]);
            k.avgPool2dGrad(gy, dg, g);
            referenceKernels.avgPool2dGrad(gy, dw, g);
            close(dg.values(), dw.values(), 1e-6, 'avgPool2dGrad');
            const layout = { outer: g.n, channels: g.c, inner: g.h * g.w + (threads > 1 ? 40_000 : 0) };
            const n = layout.outer * layout.channels * layout.inner;
            const xa = fromValues(values(n, seed + 3), [n]), bias = fromValues(values(g.c, seed + 4), [g.c]);
            const ag = Tensor.empty([n]), aw = Tensor.empty([n]);
            k.channelAdd(xa, bias, ag, layout);
            referenceKernels.channelAdd(xa, bias, aw, layout);
            assert.deepEqual(ag.toArray(), aw.toArray(), 'channelAdd');
          }),
          { numRuns: threads > 1 ? 10 : 50 },
        );
      });
    });
  }
}

test('copyAxes merges contiguous axes and drops size-1 axes; broadcast source axes get stride 0', () => {
  const t = Tensor.empty([2, 3, 4]);
  assert.deepEqual(copyAxes(t, Tensor.empty([2, 3, 4])), [[1, 0, 0], [1, 0, 0], [1, 0, 0], [24, 1, 1]]);
  const p = t.view([4, 2, 3], [1, 12, 4], 0); // axes (2,3,4) -> (4,2,3): the last two stay adjacent and merge
  assert.deepEqual(copyAxes(p, Tensor.empty([4, 2, 3])), [[1, 0, 0], [1, 0, 0], [4, 1, 6], [6, 4, 1]]);
  const row = Tensor.empty([1, 4]);
  assert.deepEqual(copyAxes(row, Tensor.empty([5, 4])), [[1, 0, 0], [1, 0, 0], [5, 0, 4], [4, 1, 1]]);
  // Five axes remain (the wrapper loops over the first): the attention's q/k/v split is such a copy.
  assert.deepEqual(copyAxes(p.view([4, 1, 2, 1, 3], [1, 0, 12, 0, 4], 0), Tensor.empty([4, 5, 2, 6, 3])), [[4, 1, 180], [5, 0, 36], [2, 12, 18], [6, 0, 3], [3, 4, 1]]);
});
