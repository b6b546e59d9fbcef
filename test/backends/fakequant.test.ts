// The wasm fake-quantization kernels (kernels/fakequant.ts through src/backends/wasm/fakequant.ts)
// against the reference backend, map by map, on random values, the maps' edge points (clip,
// thresholds, rounding ties, ±0, ±Inf, NaN) and random parameters, for the SIMD and scalar builds,
// single- and multi-threaded (every call split). Exact (bit for bit) for the maps built from
// compares and rounding arithmetic; the maps through tanh, cosh and sin within TOLERANCE.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';
import type { FakeQuantAttrs } from '../../src/quant/ops.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import type { KernelVariant } from '../../src/backends/wasm/index.js';
import { splittingEngine } from '../helpers.js';
import { FakeQuantWasmKernels } from '../../src/backends/wasm/fakequant.js';

/** |got − want| ≤ TOLERANCE·scale for the transcendental maps, scale = the map's largest gradient (k·t, 4ω·n/π, ...). */
const TOLERANCE = 2e-5;

const make = (variant: KernelVariant, threads: number): FakeQuantWasmKernels => new FakeQuantWasmKernels(splittingEngine(variant, threads));

/** Each map with random parameters, its learned scalar (0: none), the points where it switches, and its gradient scale (0: exact). */
interface Case {
  a: FakeQuantAttrs;
  p: number;
  edges: number[];
  scale: number;
}

const f32 = Math.fround;

function cases(r: Rng): Case[] {
  const u = (lo: number, hi: number) => lo + (hi - lo) * r.uniform();
  const clip = r.uniform() < 0.3 ? null : u(0.1, 2);
  const threshold = u(0.01, 1), s = f32(u(0.01, 0.2)), alpha = f32(u(0.5, 4)), levels = 1 + Math.floor(u(0, 15));
  const t = u(0.1, 10), k = Math.max(1 / t, 1), sigma = u(0.2, 3), omega = u(0.05, 0.5), terms = 1 + Math.floor(u(0, 18));
  const ties = (step: number) => [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 127.5, -128.5].map((h) => f32(h * step));
  const around = (v: number) => [v, -v, f32(v), -f32(v), f32(v) * (1 + 2 ** -23), f32(v) * (1 - 2 ** -24)];
  const c = (a: FakeQuantAttrs, edges: number[], p = 0, scale = 0): Case => ({ a, p, edges, scale });
  return [
    c({ kind: 'sign', clip }, around(clip ?? 1)),
    c({ kind: 'approx_sign' }, around(1)),
    c({ kind: 'swish_sign', beta: u(1, 8) }, [], 0, 10),
    c({ kind: 'heaviside', clip }, around(clip ?? 1)),
    c({ kind: 'tern', threshold, clip }, [...around(threshold), ...around(clip ?? 1)]),
    c({ kind: 'dorefa_act', levels }, [...ties(1 / levels), 1, 1.5]),
    c({ kind: 'dorefa_weight', levels, maxTanh: u(0.5, 1) }, [], 0, 4),
    c({ kind: 'pact', levels }, [...ties(alpha / levels), alpha, -alpha], alpha),
    c({ kind: 'lsq', qn: 128, qp: 127, gradScale: u(0.01, 1) }, [...ties(s), 128 * s, -128 * s, 127 * s], s),
    c({ kind: 'lsq', qn: 0, qp: 15, gradScale: u(0.01, 1) }, [...ties(s), 15 * s], s),
    c({ kind: 'ede', t, k }, [], 0, k * t),
    c({ kind: 'dte', stage: 1, width: u(1, 3), t: 1, k: 1, sigma }, around(sigma)),
    c({ kind: 'dte', stage: 2, width: 1, t, k, sigma }, [], 0, k * t),
    c({ kind: 'fourier', omega, terms }, [1, -1, ...around(1)], 0, (4 * omega * terms) / Math.PI),
    c({ kind: 'nested', drop: Math.floor(u(0, 7)) }, [...ties(1), 128, -128, 200, -200]),
    c({ kind: 'ttq_pos', threshold }, around(threshold), f32(u(0.1, 2))),
    c({ kind: 'ttq_neg', threshold }, around(threshold), f32(u(0.1, 2))),
    c({ kind: 'pruned_tern', threshold }, around(threshold)),
  ];
}

const SPECIAL = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40];

function input(n: number, r: Rng, edges: number[]): Float32Array {
  const v = Float32Array.from({ length: n }, () => (r.uniform() * 2 - 1) * 3);
  [...SPECIAL, ...edges].forEach((e, i) => i < n && (v[(i * 7) % n] = e));
  return v;
}

function compare(got: ArrayLike<number>, want: ArrayLike<number>, scale: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (scale === 0 || !Number.isFinite(w)) assert.ok(Object.is(g, w), `${what}[${i}]: got ${g}, want ${w} (bit for bit)`);
    else assert.ok(Math.abs(g - w) <= TOLERANCE * Math.max(scale, Math.abs(w)), `${what}[${i}]: got ${g}, want ${w} (tolerance ${TOLERANCE}·${scale})`);
  }
}

for (const variant of ['simd-relaxed', 'simd', 'scalar'] as const) {
  for (const threads of [1, 2]) {
    describe(`wasm fake quantization (${variant}, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const k = make(variant, threads);
      test('forward, ∂q/∂x and ∂q/∂p of every map match the reference (with and without g)', () => {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 90 }), fc.nat(), (n, seed) => {
            const r = new Rng(seed);
            for (const { a, p, edges, scale } of cases(r)) {
              const v = input(n + (threads > 1 ? 300 : 0), r, edges), size = v.length;
              const x = fromValues(v, [size]), g = fromValues(input(size, r, []), [size]);
              const [got, want] = [Tensor.empty([size]), Tensor.empty([size])];
              k.fakeQuant(x, got, a, p);
              referenceKernels.fakeQuant(x, want, a, p);
              compare(got.values(), want.values(), 0, `${a.kind} forward`);
              for (const grad of [null, g]) {
                const [gxGot, gxWant, gpGot, gpWant] = [0, 0, 0, 0].map(() => Tensor.empty([size]));
                k.fakeQuantGrad(x, grad, gxGot!, gpGot!, a, p);
                referenceKernels.fakeQuantGrad(x, grad, gxWant!, gpWant!, a, p);
                const label = `${a.kind} ${JSON.stringify(a)} p ${p}${grad ? ' times g' : ''}`;
                compare(gxGot!.values(), gxWant!.values(), scale, `${label} ∂q/∂x`);
                compare(gpGot!.values(), gpWant!.values(), 0, `${label} ∂q/∂p`);
                // Only ∂q/∂x (the SIMD paths take this one).
                k.fakeQuantGrad(x, grad, gxGot!, null, a, p);
                compare(gxGot!.values(), gxWant!.values(), scale, `${label} ∂q/∂x alone`);
              }
            }
          }),
          { numRuns: threads > 1 ? 6 : 25 },
        );
      });
    });
  }
}

test('sin(x + phase) (FDA noise adaptation) is the reference or one float32 ulp from it on every build; arguments past ±1e5 run the reference', () => {
  const r = new Rng(21), ulp = (v: number) => Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(v) || 2 ** -126)) - 23));
  const specials = [0, -0, NaN, Infinity, -Infinity, Math.PI, -Math.PI, f32(Math.PI / 2), 3e-39, 1e-30];
  const scalarKernels = make('scalar', 1);
  for (const variant of ['simd-relaxed', 'simd', 'scalar'] as const) {
    for (const threads of [1, 2]) {
      const k = make(variant, threads);
      for (const phase of [0, Math.PI / 2, 1]) {
        const v = Float32Array.from({ length: 4000 }, (_, i) => (i < specials.length ? specials[i]! : (r.uniform() - 0.5) * [2, 20, 200][i % 3]!));
        const x = fromValues(v, [v.length]), [got, want] = [Tensor.empty([v.length]), Tensor.empty([v.length])];
        k.sin(x, got, phase);
        referenceKernels.sin(x, want, phase);
        const g = got.values(), w = want.values();
        let exact = 0;
        w.forEach((wi, i) => {
          if (Object.is(g[i], wi)) exact++;
          else assert.ok(Math.abs(g[i]! - wi) <= ulp(wi), `${variant} x${threads} sin(${v[i]} + ${phase}): ${g[i]} vs ${wi}`);
        });
        assert.ok(exact >= 0.99 * w.length, `${variant}: ${exact} of ${w.length} equal`);
        // The f64x2 lanes run the scalar polynomial's operations: the scalar build's bits.
        const scalar = Tensor.empty([v.length]);
        scalarKernels.sin(x, scalar, phase);
        assert.deepEqual(Array.from(g), Array.from(scalar.values()), `${variant} x${threads}: lanes vs scalar`);
        // One argument past the kernel's range: the whole call is the reference's.
        v[7] = 3e5;
        const xw = fromValues(v, [v.length]);
        k.sin(xw, got, phase);
        referenceKernels.sin(xw, want, phase);
        assert.deepEqual(Array.from(got.values()), Array.from(want.values()));
      }
    }
  }
});

test('float64 and strided inputs run the reference', () => {
  const k = make('simd', 1);
  const x = fromValues([-1, 0.5, 2], [3], 'float64'), out = Tensor.empty([3], 'float64');
  k.fakeQuant(x, out, { kind: 'tern', threshold: 0.6, clip: null }, 0);
  assert.deepEqual(out.toArray(), [-1, 0, 1]);
});

test('no kernel build carries data segments (table-driven Math would be written over the arena at every instantiation)', () => {
  const leb = (b: Uint8Array, at: number): [number, number] => {
    let v = 0, shift = 0, i = at;
    for (;;) {
      const byte = b[i++]!;
      v += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return [v, i];
    }
  };
  // Every build: the engine's and the packed runtime's (both instantiate on the shared arena).
  const files = readdirSync(new URL('../../build/', import.meta.url)).filter((f) => f.endsWith('.wasm'));
  assert.ok(files.length >= 9, `expected every kernel build in build/, found ${files.join(', ')}`);
  for (const file of files) {
    const b = new Uint8Array(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
    let segments = 0;
    for (let at = 8; at < b.length; ) {
      const id = b[at]!;
      const [size, body] = leb(b, at + 1);
      if (id === 11) segments += leb(b, body)[0];
      at = body + size;
    }
    assert.equal(segments, 0, `${file}: ${segments} data segments`);
  }
});
