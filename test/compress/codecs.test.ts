// Tensor codecs: exact payload sizes in the ledger, every encoding's round trip, bad input, and
// the wasm quantize kernel bit-identical to the TypeScript quantizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend, setBackend } from '../../src/backends/index.js';
import { kernels, registerWasmBackend } from '../../src/backends/index.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { memory } from '../../src/core/ledger.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { packTensor, packedByteLength, releasePacked, unpackTensor, type Encoding } from '../../src/compress/codecs.js';
import { Rng } from '../../src/util/rng.js';

const noise = { seed: 4, stream: 1, step: 2 };

function randomTensor(shape: number[], seed: number): Tensor {
  const r = new Rng(seed);
  return fromValues(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()), shape);
}

test('every encoding: payload size = packedByteLength, booked as saved, freed on release', () => {
  scope(() => {
    const x = randomTensor([3, 5, 9, 11], 1);
    const encodings: Encoding[] = [
      { kind: 'fp16' }, { kind: 'quant', bits: 2, groupSize: 64 }, { kind: 'quant', bits: 8, groupSize: 256, metadata: 'fp32' },
      { kind: 'quant', bits: 4, groupSize: 100, stochastic: false }, { kind: 'division', block: 8, hfcBits: 2 },
    ];
    for (const e of encodings) {
      const before = memory().current.saved;
      const p = packTensor(x, e, noise);
      assert.equal(p.bytes, packedByteLength(e, x.shape));
      assert.equal(memory().current.saved - before, p.bytes);
      const y = unpackTensor(p);
      assert.deepEqual(y.shape, x.shape);
      assert.equal(y.dtype, 'float32');
      const xv = x.values(), yv = y.values();
      const maxErr = Math.max(...Array.from(xv, (v, i) => Math.abs(v - yv[i]!)));
      assert.ok(maxErr < (e.kind === 'fp16' ? 2e-3 : 4), `${e.kind}: ${maxErr}`);
      y.dispose();
      releasePacked(p);
      assert.equal(memory().current.saved, before);
    }
  });
});

test('masks at 1 bit and indices at ceil(log2(max + 1)) bits round-trip exactly; bad values are named', () => {
  scope(() => {
    const r = new Rng(2);
    const mask = fromValues(Array.from({ length: 1000 }, () => r.int(2)), [10, 100], 'uint8');
    const pm = packTensor(mask, { kind: 'mask' }, null);
    assert.equal(pm.bytes, 125);
    assert.deepEqual(unpackTensor(pm).values(), mask.values());
    const idx = fromValues(Array.from({ length: 999 }, () => r.int(9)), [999], 'int32');
    const pi = packTensor(idx, { kind: 'index' }, null);
    assert.equal(pi.indexBits, 4); // a 3x3 max-pool window: ceil(log2 9) = 4
    assert.equal(pi.bytes, packedByteLength({ kind: 'index' }, [999], 4));
    assert.deepEqual(unpackTensor(pi).values(), idx.values());
    assert.throws(() => packTensor(fromValues([0, 2, 1], [3], 'uint8'), { kind: 'mask' }, null), /mask encoding: value 2 at 1 is not 0 or 1/);
    assert.throws(() => packTensor(fromValues([0, -1], [2], 'int32'), { kind: 'index' }, null), /index encoding: value -1 at 1 is negative/);
    assert.throws(() => packTensor(mask, { kind: 'fp16' }, null), /fp16 encoding needs a float tensor, got uint8/);
    assert.throws(() => packTensor(randomTensor([4, 4], 3), { kind: 'division', block: 8, hfcBits: 2 }, null), /division encoding needs an \[N, C, H, W\] tensor/);
  });
});

test('strided views are packed by value', () => {
  scope(() => {
    const x = randomTensor([6, 40], 5);
    const t = x.view([40, 6], [1, 40], 0); // a transpose
    const p = packTensor(t, { kind: 'quant', bits: 8, groupSize: 32, stochastic: false }, null);
    const y = unpackTensor(p).values(), ref = t.values();
    assert.ok(Array.from(y).every((v, i) => Math.abs(v - ref[i]!) < 0.05));
    releasePacked(p);
  });
});

// The wasm codec kernels must exist (npm test builds them): a missing one fails here, never skips.
test('the wasm backend binds every codec kernel', () => {
  assert.ok(registerWasmBackend(), 'wasm kernels not built (npm run build:kernels)');
  const previous = getBackend();
  setBackend('wasm');
  const k = kernels('float32');
  setBackend(previous);
  for (const name of ['groupRanges', 'quantizeGroups', 'groupQuantize', 'dequantizeGroups', 'packMask', 'unpackMask'] as const) {
    assert.notEqual(k[name], referenceKernels[name], `${name} runs on the reference on the wasm backend`);
  }
});

test('wasm quantize kernel is bit-identical to the TypeScript quantizer', () => {
  const previous = getBackend();
  try {
    scope(() => {
      const cases: [number[], Encoding][] = [
        [[4, 3, 17, 19], { kind: 'quant', bits: 2, groupSize: 256 }],
        [[5, 777], { kind: 'quant', bits: 4, groupSize: 100 }],
        [[2, 300], { kind: 'quant', bits: 8, groupSize: 64, stochastic: false }],
        [[3, 1000], { kind: 'quant', bits: 1, groupSize: 32 }],
        [[2, 4, 14, 10], { kind: 'division', block: 8, hfcBits: 2 }],
        [[2, 600], { kind: 'quant', bits: 4, groupSize: 256, metadata: 'fp32' }],
        // Large enough for the worker pool: split by rows, and kept whole when rows end mid-byte.
        [[4, 40000], { kind: 'quant', bits: 4, groupSize: 256 }],
        [[3, 50001], { kind: 'quant', bits: 2, groupSize: 100 }],
        // The SIMD bodies at every width, stochastic and nearest, from 16-aligned and unaligned starts.
        [[3, 515], { kind: 'quant', bits: 8, groupSize: 256 }],
        [[2, 999], { kind: 'quant', bits: 2, groupSize: 64, stochastic: false }],
        [[2, 1200], { kind: 'quant', bits: 4, groupSize: 96, stochastic: false }],
        [[2, 1024], { kind: 'quant', bits: 1, groupSize: 256 }],
      ];
      for (const [[shape, e], fallback] of cases.flatMap((c) => [[c, true], [c, false]] as const)) {
        const x = randomTensor(shape, shape.length);
        const v = x.data();
        if (fallback) v.fill(0.1, 0, 300); // constant groups that force the fp32 metadata fallback
        // ±0 bounds in either order (stored as +0), and a NaN that the range pass skips.
        v.fill(0, 300, 340);
        v[305] = -0;
        v[333] = -0;
        v[350] = NaN;
        v[v.length - 1] = -0;
        const bytes = (backend: string) => {
          setBackend(backend);
          const p = packTensor(x, e, noise);
          const out = new Uint8Array(p.payload!.values());
          releasePacked(p);
          return out;
        };
        assert.deepEqual(bytes('wasm'), bytes('reference'), `${JSON.stringify(e)} ${shape} fallback ${fallback}`);
      }
    });
  } finally {
    setBackend(previous);
  }
});

test('wasm dequantize and mask kernels are bit-identical to the TypeScript codecs', () => {
  const previous = getBackend();
  try {
    scope(() => {
      const onBoth = <T>(f: () => T): [T, T] => {
        setBackend('wasm');
        const w = f();
        setBackend('reference');
        return [w, f()];
      };
      const quantCases: [number[], Encoding][] = [
        [[4, 3, 17, 19], { kind: 'quant', bits: 2, groupSize: 256 }],
        [[5, 777], { kind: 'quant', bits: 4, groupSize: 101 }], // groups start at odd elements
        [[3, 333], { kind: 'quant', bits: 4, groupSize: 256 }],
        [[2, 300], { kind: 'quant', bits: 8, groupSize: 64, stochastic: false }],
        [[3, 1000], { kind: 'quant', bits: 1, groupSize: 32 }],
        [[2, 600], { kind: 'quant', bits: 4, groupSize: 256, metadata: 'fp32' }],
        [[4, 40000], { kind: 'quant', bits: 4, groupSize: 256 }], // split across the worker pool
        [[3, 1001], { kind: 'quant', bits: 2, groupSize: 100 }],
        [[2, 515], { kind: 'quant', bits: 8, groupSize: 256 }],
        [[2, 1024], { kind: 'quant', bits: 2, groupSize: 256 }],
      ];
      for (const [shape, e] of quantCases) {
        const x = randomTensor(shape, shape.length + 7);
        setBackend('reference');
        const p = packTensor(x, e, noise); // one payload, decoded by both paths
        const [w, r] = onBoth(() => unpackTensor(p).values());
        assert.deepEqual(new Uint32Array(new Float32Array(w).buffer), new Uint32Array(new Float32Array(r).buffer), `${JSON.stringify(e)} ${shape}`);
        releasePacked(p);
      }
      for (const n of [0, 1, 7, 8, 9, 64, 1003]) {
        const r = new Rng(n);
        const mask = fromValues(Uint8Array.from({ length: n }, () => (r.uniform() < 0.5 ? 1 : 0)), [n], 'uint8');
        const [pw, pr] = onBoth(() => packTensor(mask, { kind: 'mask' }, null));
        assert.deepEqual(new Uint8Array(pw.payload!.values()), new Uint8Array(pr.payload!.values()), `mask n=${n}`);
        const [uw, ur] = onBoth(() => unpackTensor(pw).values());
        assert.deepEqual(uw, ur);
        assert.deepEqual(Array.from(uw), Array.from(mask.values()), `mask round trip n=${n}`);
        releasePacked(pw);
        releasePacked(pr);
      }
      for (const at of [3, 13]) { // in a whole 8-byte word and in the tail
        const bad = fromValues(Uint8Array.from({ length: 15 }, (_, i) => (i === at ? 2 : i & 1)), [15], 'uint8');
        setBackend('wasm');
        assert.throws(() => packTensor(bad, { kind: 'mask' }, null), new RegExp(`value 2 at ${at} is not 0 or 1`));
      }
    });
  } finally {
    setBackend(previous);
  }
});
