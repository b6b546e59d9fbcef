import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Arena, ArenaLimitError, arena, parseByteSize, setMemoryLimit } from '../../src/core/arena.js';
import { Tensor } from '../../src/core/tensor.js';
import { syntheticShapes } from '../../src/data/index.js';
import { Compression } from '../../src/compress/act.js';
import { createModel } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { fit } from '../../src/train/index.js';

/** A random program: allocate (size, lifetime) or free the k-th live block. */
const program = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('alloc' as const), bytes: fc.integer({ min: 0, max: 300_000 }), lifetime: fc.constantFrom('short' as const, 'long' as const, 'fixed' as const) }),
    fc.record({ op: fc.constant('free' as const), k: fc.nat() }),
  ),
  { maxLength: 200 },
);

test('arena: random alloc/free sequences never overlap, coalesce back to one block, and bound the high-water', () => {
  fc.assert(
    fc.property(program, (ops) => {
      const a = new Arena(1);
      const live: { ptr: number; bytes: number }[] = [];
      let peakLive = 0;
      for (const o of ops) {
        if (o.op === 'alloc') {
          const ptr = a.alloc(o.bytes, o.lifetime);
          assert.equal(ptr % 64, 0, 'aligned');
          const end = ptr + Arena.blockSize(o.bytes);
          for (const b of live) assert.ok(end <= b.ptr || ptr >= b.ptr + Arena.blockSize(b.bytes), `block [${ptr}, ${end}) overlaps a live block at ${b.ptr}`);
          assert.ok(end <= a.memory.buffer.byteLength);
          live.push({ ptr, bytes: o.bytes });
        } else if (live.length) {
          const [b] = live.splice(o.k % live.length, 1);
          a.free(b!.ptr, b!.bytes);
        }
        // Used space = live blocks + free holes, and the holes are coalesced (never adjacent).
        const holes = a.freeBlocks();
        const reserved = live.reduce((s, b) => s + Arena.blockSize(b.bytes), 0);
        assert.equal(a.reservedBytes, reserved);
        assert.equal(a.usedBytes - 64, reserved + holes.reduce((s, [, n]) => s + n, 0));
        holes.forEach(([s, n], i) => i > 0 && assert.ok(holes[i - 1]![0] + holes[i - 1]![1] < s, 'adjacent holes were not merged') && assert.ok(n > 0));
        assert.ok(holes.every(([s, n]) => s + n < a.usedBytes), 'a hole touching the top was not given back');
        peakLive = Math.max(peakLive, reserved);
      }
      const hw = a.highWaterBytes;
      assert.ok(hw >= 64 + peakLive);
      // Freeing everything leaves one empty space; the same blocks again, in any order, fit under the old high-water.
      for (const b of live.splice(0)) a.free(b.ptr, b.bytes);
      assert.deepEqual(a.freeBlocks(), []);
      assert.equal(a.usedBytes, 64);
      const sizes = ops.flatMap((o) => (o.op === 'alloc' ? [o.bytes] : []));
      let total = 0;
      for (const s of sizes.reverse()) {
        if (total + Arena.blockSize(s) > peakLive) break;
        a.alloc(s);
        total += Arena.blockSize(s);
      }
      assert.ok(a.highWaterBytes === hw, 'reallocating at most the peak live bytes raised the high-water');
    }),
    { numRuns: 200 },
  );
});

test('arena: a long block takes the highest hole, leaving the slot a large activation left for the next one', () => {
  const K = 64 * 1024;
  const a = new Arena(1);
  const slot = a.alloc(8 * K, 'short'); // a large activation
  a.alloc(K, 'fixed');
  const small = a.alloc(2 * K, 'short');
  a.alloc(K, 'fixed');
  a.free(slot, 8 * K);
  a.free(small, 2 * K); // holes: 8K low, 2K high
  const hw = a.highWaterBytes;
  const saved = a.alloc(K, 'long'); // e.g. a packed saved activation
  assert.ok(saved > slot + 8 * K, 'the long block went into the low slot');
  assert.equal(a.alloc(8 * K, 'short'), slot, 'the next large activation did not get its slot back');
  assert.equal(a.highWaterBytes, hw);
});

test('arena: a memory limit is a clear error naming the tensor and the limit; memory below it keeps working', () => {
  const a = arena();
  const cap = a.usedBytes + 3 * 2 ** 20;
  setMemoryLimit(cap);
  try {
    const small = Tensor.empty([256, 1024]); // 1 MiB fits
    assert.throws(() => Tensor.empty([1024, 1024], 'float32', 'activation'), (e: unknown) => {
      assert.ok(e instanceof ArenaLimitError);
      assert.match(e.message, /activation tensor float32 \[1024, 1024\] \(4\.0 MiB\)/);
      assert.match(e.message, /memory limit of \d+\.\d MiB/);
      assert.equal(e.limitBytes, cap);
      return true;
    });
    small.dispose();
    Tensor.empty([512, 1024]).dispose(); // the space freed by the failure and the dispose is usable
  } finally {
    a.limitBytes = Infinity;
  }
  const held = Tensor.empty([1024]);
  assert.throws(() => setMemoryLimit(64), /already in use/);
  held.dispose();
  assert.equal(a.limitBytes, Infinity);
  const b = new Arena(1);
  b.limitBytes = 1 << 20;
  assert.throws(() => b.alloc(2 << 20), /past the memory limit of 1\.0 MiB/);
  assert.throws(() => new Arena(1).alloc(2 ** 32), /4 GiB WebAssembly \(wasm32\) address space/);
});

test('parseByteSize reads plain bytes and binary/decimal units, and names bad input', () => {
  assert.equal(parseByteSize('268435456'), 268435456);
  assert.equal(parseByteSize('256MiB'), 256 * 2 ** 20);
  assert.equal(parseByteSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseByteSize('500MB'), 500e6);
  assert.equal(parseByteSize('64k'), 64e3);
  assert.throws(() => parseByteSize('lots', '--memory-limit'), /--memory-limit: expected a positive size .* got 'lots'/);
  assert.throws(() => parseByteSize('0MiB'), /positive/);
  assert.throws(() => parseByteSize('12 parsecs'), /got '12 parsecs'/);
});

test('training reads no stale arena bytes: freed memory poisoned with NaN gives bit-identical weights', () => {
  const train = (poison: boolean, mode: 'off' | 'int2') => {
    const a = arena();
    const free = a.free;
    if (poison) a.free = (ptr, bytes) => {
      new Uint8Array(a.buffer, ptr, Arena.blockSize(bytes)).fill(0xff); // NaN as float32/float64
      free.call(a, ptr, bytes);
    };
    try {
      const data = syntheticShapes({ n: 32, size: 8, channels: 3, seed: 2 });
      const m = createModel('resnet20', data.itemShape, 10, 3);
      const opt = new SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
      const act = new Compression({ mode, model: m, seed: 1 });
      fit(m, data, null, { epochs: 1, batchSize: 16, optimizer: opt, seed: 1, wrapForward: (fn) => act.run(fn) });
      const w = m.parameters().map((p) => Buffer.from((p.values() as Float32Array).buffer));
      m.dispose();
      opt.dispose();
      return w;
    } finally {
      a.free = free;
    }
  };
  for (const mode of ['off', 'int2'] as const) {
    const clean = train(false, mode), poisoned = train(true, mode);
    clean.forEach((w, i) => assert.deepEqual(poisoned[i], w, `${mode}: parameter ${i} differs when freed memory holds NaN`));
  }
});

test('arena.zero clears exactly [ptr, ptr + bytes) on shared memory (wasm memory.fill), also after growing', () => {
  const a = new Arena(1);
  assert.equal(a.shared, true, 'Node gives the arena shared memory');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 70_000 }), (before, skew, bytes) => {
      const ptr = a.alloc(before + skew + bytes + 64) + skew; // may grow the memory between calls
      const view = new Uint8Array(a.buffer, ptr - skew, skew + bytes + 64);
      for (let i = 0; i < view.length; i++) view[i] = 1 + (i % 250);
      a.zero(ptr, bytes);
      const after = new Uint8Array(a.buffer, ptr - skew, skew + bytes + 64);
      for (let i = 0; i < after.length; i++) {
        const inside = i >= skew && i < skew + bytes;
        if (inside ? after[i] !== 0 : after[i] !== 1 + (i % 250)) assert.fail(`byte ${i - skew} relative to ptr is ${after[i]} (zeroed ${bytes} bytes)`);
      }
      a.free(ptr - skew, before + skew + bytes + 64);
    }),
    { numRuns: 40 },
  );
});
