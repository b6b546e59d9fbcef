// COMET codec: the wasm kernels (kernels/comet.ts) against the TypeScript oracle (compress/comet.ts):
// identical streams and decoded bits on random data of every kind (smooth, ReLU-like with exact
// zeros, huge, tiny, NaN and ±Infinity escapes, several chunks, 1 and 3 threads), every finite
// decoded element within the bound, corrupt and truncated streams refused by both; and the packed
// size as the ledger books it (the whole stream, headers included).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getBackend, getThreads, kernels, registerWasmBackend, setBackend, setThreads } from '../../src/backends/index.js';
import { loadKernelModule, WasmKernels } from '../../src/backends/wasm/index.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import type { Kernels } from '../../src/backends/kernels.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { COMET_CHUNK, cometBound, cometDecode, cometEncode } from '../../src/compress/comet.js';
import { packTensor, releasePacked, unpackTensor } from '../../src/compress/codecs.js';
import { Rng } from '../../src/util/rng.js';

const initialThreads = getThreads();
after(() => setThreads(initialThreads));

function wasmKernels(): Kernels {
  assert.ok(registerWasmBackend(), 'wasm kernels not built (npm run build:kernels)');
  const previous = getBackend();
  setBackend('wasm');
  const k = kernels('float32');
  setBackend(previous);
  return k;
}

/** Encodes with a backend's kernel; returns the stream. */
function encodeWith(k: Pick<Kernels, 'cometEncode'>, x: Float32Array, eb: number): Uint8Array {
  return scope(() => Uint8Array.from(k.cometEncode(fromValues(x, [x.length]), eb, 'workspace').data() as Uint8Array));
}

function decodeWith(k: Pick<Kernels, 'cometDecode'>, stream: Uint8Array, n: number): Float32Array {
  return scope(() => {
    const bytes = fromValues(stream, [stream.length], 'uint8');
    const out = Tensor.uninitialized([n], 'float32', 'workspace');
    k.cometDecode(bytes, out);
    return Float32Array.from(out.data() as Float32Array);
  });
}

/** Encode and decode on both backends: identical streams and bit patterns; finite values within the bound. */
function checkBoth(wasm: Kernels, x: Float32Array, eb: number, label: string): Uint8Array {
  const ref = cometEncode(x, eb);
  assert.deepEqual(encodeWith(referenceKernels, x, eb), ref, `${label}: reference kernel vs cometEncode`);
  const got = encodeWith(wasm, x, eb);
  assert.equal(got.length, ref.length, `${label}: stream length`);
  assert.deepEqual(got, ref, `${label}: wasm stream differs from the TypeScript oracle`);
  const want = new Float32Array(x.length);
  cometDecode(ref, want);
  const back = decodeWith(wasm, ref, x.length);
  assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(want.buffer), `${label}: wasm decode differs`);
  const bound = cometBound(ref);
  assert.equal(bound, Math.fround(eb));
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]!)) assert.ok(Math.abs(back[i]! - x[i]!) <= bound, `${label} ${i}: ${back[i]} vs ${x[i]} (eb ${bound})`);
    else assert.ok(Object.is(back[i], x[i]) || (Number.isNaN(back[i]!) && Number.isNaN(x[i]!)), `${label} ${i}: ${back[i]} vs ${x[i]}`);
  }
  return ref;
}

const value = fc.oneof(
  { weight: 4, arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true, min: -10, max: 10 }) },
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e-40, 3.4e38) },
);

test('comet: wasm and TypeScript codecs bit-identical, every finite element within the bound', () => {
  const wasm = wasmKernels();
  setThreads(1);
  fc.assert(fc.property(fc.array(value, { maxLength: 1200 }), fc.oneof(fc.constant(0), fc.double({ min: 1e-6, max: 20, noNaN: true })), (values, eb) => {
    checkBoth(wasm, Float32Array.from(values), eb, `n ${values.length}`);
  }), { numRuns: 120 });
});

/**
 * Runs `fn` with the scalar build's kernels (no SIMD: other code paths in kernels/comet.ts) and the
 * plain SIMD build's (saturating instead of relaxed truncation where the relaxed build is the
 * default), each at 1 thread.
 */
function withOtherBuilds(fn: (build: string, k: WasmKernels) => void): void {
  for (const variant of ['scalar', 'simd'] as const) {
    const module = loadKernelModule(variant);
    assert.ok(module, `the ${variant} kernel build is missing: run npm run build:kernels`);
    const k = new WasmKernels(module);
    k.setThreads(1);
    try {
      fn(variant, k);
    } finally {
      k.shutdown();
    }
  }
}

// Activation-like data at the mode's bounds (a fraction of the range): normal, ReLU (exact zeros),
// smooth runs and mixtures, so that bins of both signs, every predictor and Rice parameters 0..4
// occur; the other builds must agree too.
test('comet: activation-like data at relative bounds, every kernel build bit-identical to the oracle', () => {
  const wasm = wasmKernels();
  setThreads(1);
  withOtherBuilds((build, other) => {
    const kind = fc.constantFrom('normal', 'relu', 'smooth', 'mixed');
    fc.assert(fc.property(kind, fc.integer({ min: 1, max: 2000 }), fc.double({ min: 1e-3, max: 0.3, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (k, n, rel, seed) => {
      const rng = new Rng(seed);
      const x = Float32Array.from({ length: n }, (_, i) => {
        const g = rng.normal();
        if (k === 'relu' || (k === 'mixed' && (i >> 6) % 3 === 0)) return Math.max(0, g);
        if (k === 'smooth' || (k === 'mixed' && (i >> 6) % 3 === 1)) return 3 * Math.sin(i / 50) + 0.01 * g;
        return g;
      });
      let lo = Infinity, hi = -Infinity;
      for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      const eb = rel * (hi - lo);
      const ref = checkBoth(wasm, x, eb, `${k} n ${n} rel ${rel}`);
      assert.deepEqual(encodeWith(other, x, eb), ref, `${k} n ${n}: ${build} build's stream`);
      const want = decodeWith(wasm, ref, n), got = decodeWith(other, ref, n);
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), `${k} n ${n}: ${build} build's decode`);
    }), { numRuns: 40 });
  });
});

// The wasm decoder reads k = 0 blocks a byte at a time through a table and hands a block whose run
// of ones crosses 17 to the value-by-value path (an escape may follow): mostly-zero blocks at bound
// 0.5 (the bins are the integers) with bins up to ±13 (zig-zag residuals up to 26: long unary
// codes, escapes) and NaN (verbatim) at random places, so that runs end at every bit offset.
test('comet: k = 0 blocks with long unary codes and escapes decode like the oracle (every kernel build)', () => {
  const wasm = wasmKernels();
  setThreads(1);
  withOtherBuilds((build, other) => {
    const spike = fc.record({ at: fc.nat(), v: fc.oneof(fc.integer({ min: -13, max: 13 }), fc.constant(NaN)) });
    fc.assert(fc.property(fc.integer({ min: 1, max: 1100 }), fc.array(spike, { maxLength: 24 }), fc.integer({ min: 0, max: 1e6 }), (n, spikes, seed) => {
      const rng = new Rng(seed);
      const x = Float32Array.from({ length: n }, () => (rng.uniform() < 0.2 ? 1 : 0));
      for (const { at, v } of spikes) x[at % n] = v;
      const ref = checkBoth(wasm, x, 0.5, `spikes n ${n}`);
      assert.deepEqual(encodeWith(other, x, 0.5), ref, `spikes n ${n}: ${build} build's stream`);
      const want = decodeWith(wasm, ref, n), got = decodeWith(other, ref, n);
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), `spikes n ${n}: ${build} build's decode`);
    }), { numRuns: 100 });
  });
});

test('comet: a group of codes filling a 64-bit write (57 bits after 7 pending) is coded like the oracle', () => {
  // Zero predictor, k = 0, bound 0.5 (bins are the integers): after the 6-bit header, eight codes
  // of 9 bits leave 7 bits pending, then eight codes of 57 bits (zig-zag 23, 3, 23, 0 x 5).
  const wasm = wasmKernels();
  setThreads(1);
  const x = new Float32Array(512);
  x.set([0, 0, 0, 0, 0, 0, 0, -1, -12, -2, -12, 0, 0, 0, 0, 0]);
  x.set([1, 2, 3], 300);
  checkBoth(wasm, x, 0.5, 'a 57-bit group');
});

test('comet: several chunks at 1 and 3 threads give the same stream; smooth and ReLU-like data pick their predictors', () => {
  const wasm = wasmKernels();
  const rng = new Rng(11);
  const n = 5 * COMET_CHUNK + 3001; // 6 chunks: two rounds of 4 chunks at 1 thread, one round at 3
  // ReLU-like blocks (half exact zeros) and smooth blocks (a slow sine): the zero predictor keeps the zeros exact.
  const x = Float32Array.from({ length: n }, (_, i) => ((i >> 8) % 2 === 0 ? Math.max(0, rng.normal()) : Math.sin(i / 300) + 0.001 * rng.normal()));
  let lo = Infinity, hi = -Infinity;
  for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const eb = 0.05 * (hi - lo); // the mode's default: 0.05 x the range
  setThreads(1);
  const one = checkBoth(wasm, x, eb, 'relu+smooth, 1 thread');
  setThreads(3);
  const three = checkBoth(wasm, x, eb, 'relu+smooth, 3 threads');
  assert.deepEqual(three, one);
  const back = new Float32Array(n);
  cometDecode(one, back);
  let zeros = 0, kept = 0;
  for (let i = 0; i < n; i++) if (x[i] === 0) {
    zeros++;
    if (back[i] === 0) kept++;
  }
  assert.ok(zeros > 1000 && kept === zeros, `${kept} of ${zeros} ReLU zeros decoded exactly`);
  // 1.77 bits per value when written (zero blocks code a ReLU zero in 1 bit).
  assert.ok((8 * one.length) / n < 2.2, `${(8 * one.length) / n} bits per value`);
});

test('comet: truncated and corrupt streams are refused by both decoders', () => {
  const wasm = wasmKernels();
  setThreads(1);
  const x = Float32Array.from({ length: COMET_CHUNK + 500 }, (_, i) => Math.sin(i / 7));
  const stream = cometEncode(x, 1e-3);
  for (const cut of [2, 7, stream.length >> 1, stream.length - 1]) {
    const short = stream.subarray(0, cut);
    assert.throws(() => cometDecode(short, new Float32Array(x.length)), RangeError, `oracle, ${cut} bytes`);
    assert.throws(() => decodeWith(wasm, short, x.length), RangeError, `wasm, ${cut} bytes`);
  }
  // A chunk table claiming fewer bytes than the chunk needs: both read past its end.
  const lying = Uint8Array.from(stream);
  new DataView(lying.buffer).setUint32(4, 10, true);
  assert.throws(() => cometDecode(lying, new Float32Array(x.length)), RangeError);
  assert.throws(() => decodeWith(wasm, lying, x.length), RangeError);
  // A Rice parameter above 29 (block header bits 1..5 all ones).
  const badK = Uint8Array.from(stream);
  badK[12] = 0xff;
  assert.throws(() => cometDecode(badK, new Float32Array(x.length)), /Rice parameter/);
  assert.throws(() => decodeWith(wasm, badK, x.length), RangeError);
});

test('comet packTensor: the payload is the whole stream (what the ledger books), every value within EB x the range, on both backends', () => {
  for (const backend of ['reference', 'wasm'] as const) {
    if (backend === 'wasm') wasmKernels();
    const previous = getBackend();
    setBackend(backend);
    try {
      scope(() => {
        const rng = new Rng(4);
        const x = fromValues(Float32Array.from({ length: 64 * 96 }, () => Math.max(0, rng.normal())), [64, 96]);
        const p = packTensor(x, { kind: 'comet', bound: 0.02 }, null);
        const stream = p.payload!.data() as Uint8Array;
        assert.equal(p.bytes, stream.length);
        assert.deepEqual(Uint8Array.from(stream), cometEncode(x.data() as Float32Array, 0.02 * (Math.max(...(x.data() as Float32Array)) - 0)));
        const back = unpackTensor(p).data() as Float32Array, v = x.data() as Float32Array;
        const bound = cometBound(stream);
        for (let i = 0; i < v.length; i++) assert.ok(Math.abs(back[i]! - v[i]!) <= bound, `${backend} ${i}`);
        releasePacked(p);
      });
    } finally {
      setBackend(previous);
    }
  }
});
