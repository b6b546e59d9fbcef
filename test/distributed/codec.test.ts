import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  channelLayout, FileCache, LowBitCache, fixpointBytes, fixpointDecode, fixpointEncode, hashFloats, MemoryCache, parseCodec, TensorDecoder, TensorEncoder,
} from '../../src/distributed/codec.js';
import { charTextFrom } from '../../src/data/text.js';
import { Rng } from '../../src/util/rng.js';

const normals = (n: number, seed: number, scale = 1) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
};

test('fixpoint: every value decodes within half a step of its channel scale; payload = fp16 scales + packed codes', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (bits, rows, C, seed) => {
    const x = normals(rows * C, seed, 3);
    const layout = channelLayout([rows, C]);
    const payload = fixpointEncode(x, layout, bits);
    assert.equal(payload.length, 2 * C + Math.ceil((rows * C * bits) / 8));
    assert.equal(payload.length, fixpointBytes(x.length, layout, bits));
    const out = new Float32Array(x.length);
    fixpointDecode(payload, layout, bits, out);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s = Math.max(s, Math.abs(x[r * C + c]!));
      const step = s / 2 ** (bits - 1), fp16 = s * 2 ** -10; // the scale travels as fp16
      for (let r = 0; r < rows; r++) {
        const i = r * C + c;
        // Codes span [-2^(b-1), 2^(b-1)-1]: the top value clips by at most one step.
        assert.ok(Math.abs(out[i]! - x[i]!) <= step * (x[i]! > 0 ? 1 : 0.5) + fp16 + 1e-7, `bits ${bits}: ${x[i]} -> ${out[i]}`);
      }
    }
  }), { numRuns: 60 });
});

test('channels: dim 1 of [N, C, H, W], the last dim otherwise', () => {
  assert.deepEqual(channelLayout([2, 3, 4, 5]), { outer: 2, channels: 3, inner: 20 });
  assert.deepEqual(channelLayout([2, 7, 8]), { outer: 14, channels: 8, inner: 1 });
});

for (const kind of ['memory', 'file', 'lowbit'] as const) {
  test(`delta codec (${kind} caches): warm-up sends fp32, later epochs deltas; both caches stay identical and the receiver tracks the activation`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'slimgrad-cache-'));
    try {
      const spec = parseCodec('delta:4', 'test');
      const mk = (n: string) => (kind === 'file' ? new FileCache(join(dir, n)) : kind === 'lowbit' ? new LowBitCache(4) : new MemoryCache());
      const sendCache = mk('s'), recvCache = mk('r');
      const enc = new TensorEncoder(spec, sendCache), dec = new TensorDecoder(spec, recvCache);
      const ids = [5, 2, 9], shape = [3, 4, 8];
      let a = normals(96, 1);
      const direct = new Float32Array(96);
      for (let epoch = 0; epoch < 6; epoch++) {
        const e = enc.encode(a, shape, ids);
        assert.equal(e.codec, epoch === 0 ? 'fp32' : 'delta');
        const got = dec.decode({ codec: e.codec, bits: e.bits, shape, ids, hash: e.hash }, e.payload, 'test');
        if (epoch === 0) assert.deepEqual(got, a);
        else {
          assert.equal(e.payload.length, 2 * 8 + 96 / 2);
          // Error feedback: the reconstruction error is at most the 4-bit step of the delta, not of the activation.
          fixpointDecode(fixpointEncode(a, channelLayout(shape), 4), channelLayout(shape), 4, direct);
          const errDelta = Math.max(...got.map((v, i) => Math.abs(v - a[i]!)));
          const errDirect = Math.max(...direct.map((v, i) => Math.abs(v - a[i]!)));
          assert.ok(errDelta < errDirect, `epoch ${epoch}: delta error ${errDelta} vs direct ${errDirect}`);
        }
        const s = new Float32Array(32), r = new Float32Array(32);
        for (const id of ids) {
          sendCache.read(id, s);
          recvCache.read(id, r);
          assert.deepEqual(s, r);
        }
        const drift = normals(96, 100 + epoch, 0.05); // activations change slowly between epochs
        a = a.map((v, i) => v + drift[i]!);
      }
      sendCache.close();
      recvCache.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('delta codec: a receiver cache that diverged stops with a hash mismatch error', () => {
  const spec = parseCodec('delta:2', 'test');
  const recvCache = new MemoryCache();
  const enc = new TensorEncoder(spec, new MemoryCache()), dec = new TensorDecoder(spec, recvCache);
  const ids = [0, 1], shape = [2, 6];
  const a = normals(12, 3);
  let e = enc.encode(a, shape, ids);
  dec.decode({ ...e, shape, ids }, e.payload, 'boundary 0 step 0');
  recvCache.write(1, new Float32Array(6).fill(0.5)); // corrupt one entry
  e = enc.encode(a, shape, ids);
  assert.throws(() => dec.decode({ ...e, shape, ids }, e.payload, 'boundary 0 step 1'), /boundary 0 step 1: AC-SGD cache mismatch/);
});

test('codecs: bad specs and mismatched ends are clear errors', () => {
  assert.throws(() => parseCodec('delta:9', '--forward'), /--forward: 'delta:9' is not a codec/);
  assert.throws(() => parseCodec('int4', '--backward'), /--backward/);
  const dec = new TensorDecoder(parseCodec('fixpoint:8', 'x'));
  const payload = fixpointEncode(new Float32Array(4), channelLayout([1, 4]), 4);
  assert.throws(() => dec.decode({ codec: 'fixpoint', bits: 4, shape: [1, 4] }, payload, 'grad'), /received codec fixpoint:4, this end expects fixpoint:8/);
  assert.notEqual(hashFloats(Float32Array.of(1, 2)), hashFloats(Float32Array.of(2, 1)));
});

test('char text: vocabulary from the text, first 90% train, last 10% validation', () => {
  const t = charTextFrom('abcabcabcabcabcabcabcabcabcabcab!');
  assert.deepEqual(t.vocab, ['!', 'a', 'b', 'c']);
  assert.equal(t.train.length, Math.floor(33 * 0.9));
  assert.equal(t.validation.length, 33 - 29);
  assert.equal(t.validation[t.validation.length - 1], 0);
  assert.throws(() => charTextFrom('short'), /at least 20 characters/);
});
