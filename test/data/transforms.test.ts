import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { KeyedRandom, RANDOM_DOMAINS, flipHorizontal, normalize, randomCrop, randomHorizontalFlip, shiftImage, syntheticShapes } from '../../src/data/index.js';

const augmentation = (seed: number) => new KeyedRandom(seed, RANDOM_DOMAINS.augmentation);

const imageArb = fc
  .record({ c: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 6 }), w: fc.integer({ min: 1, max: 6 }) })
  .chain(({ c, h, w }) => fc.record({ shape: fc.constant([c, h, w]), values: fc.float32Array({ minLength: c * h * w, maxLength: c * h * w, noNaN: true }) }));

test('flipHorizontal mirrors columns, and twice is the identity', () => {
  fc.assert(
    fc.property(imageArb, ({ shape, values }) => {
      const w = shape[2]!;
      const item = values.slice();
      flipHorizontal(item, shape);
      for (let i = 0; i < values.length; i++) {
        const row = Math.floor(i / w), col = i % w;
        assert.equal(item[row * w + (w - 1 - col)], values[i]);
      }
      flipHorizontal(item, shape);
      assert.deepEqual(item, values);
    }),
  );
});

test('shiftImage (crop of the zero-padded image) moves pixels by (dx, dy) and zero-fills the border', () => {
  fc.assert(
    fc.property(imageArb, fc.integer({ min: -7, max: 7 }), fc.integer({ min: -7, max: 7 }), ({ shape, values }, dx, dy) => {
      const [c, h, w] = shape as [number, number, number];
      const item = values.slice();
      shiftImage(item, shape, dx, dy, 0, new Float32Array(item.length));
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const sx = x - dx, sy = y - dy;
            const expected = sx >= 0 && sx < w && sy >= 0 && sy < h ? values[(ch * h + sy) * w + sx] : 0;
            assert.equal(item[(ch * h + y) * w + x], expected);
          }
        }
      }
    }),
  );
  const grid = Float32Array.from({ length: 9 }, (_, i) => i + 1);
  shiftImage(grid, [1, 3, 3], 1, -1, -5, new Float32Array(9));
  assert.deepEqual(Array.from(grid), [-5, 4, 5, -5, 7, 8, -5, -5, -5]);
});

test('normalize gives zero mean and unit std per channel with the dataset statistics', () => {
  const d = syntheticShapes({ n: 50, size: 8, channels: 3, seed: 2 });
  const { mean, std } = d.channelStats();
  const t = normalize(mean, std);
  const x = d.values().slice();
  const random = augmentation(0);
  for (let i = 0; i < d.length; i++) t.apply(x.subarray(i * d.itemSize, (i + 1) * d.itemSize), d.itemShape, random);
  for (let c = 0; c < 3; c++) {
    let s = 0, s2 = 0;
    for (let i = 0; i < d.length; i++) {
      for (let k = 0; k < 64; k++) {
        const v = x[i * d.itemSize + c * 64 + k]!;
        s += v;
        s2 += v * v;
      }
    }
    const n = d.length * 64;
    assert.ok(Math.abs(s / n) < 1e-4, `channel ${c} mean ${s / n}`);
    assert.ok(Math.abs(Math.sqrt(s2 / n - (s / n) ** 2) - 1) < 1e-4, `channel ${c} std`);
  }
  assert.throws(() => normalize([0, 0], [1]), /2 means but 1 stds/);
  assert.throws(() => normalize(0, 0), /std must be positive/);
  assert.throws(() => normalize([0, 0], [1, 1]).apply(new Float32Array(3), [3, 1, 1], random), /2 channel statistics for items \[3, 1, 1\] with 3 channels/);
});

test('randomCrop and randomHorizontalFlip are deterministic for (seed, epoch, index) and pick every offset', () => {
  const item = Float32Array.from({ length: 16 }, (_, i) => i + 1);
  const crop = randomCrop(1);
  const flip = randomHorizontalFlip();
  const seen = new Set<string>();
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    const run = () => {
      const r = augmentation(7);
      r.reset(0, i);
      const x = item.slice();
      crop.apply(x, [1, 4, 4], r);
      return x;
    };
    const x = run();
    assert.deepEqual(x, run());
    // Locate pixel value 6 (originally at row 1, col 1) to recover the shift.
    const at = x.indexOf(6);
    seen.add(`${(at % 4) - 1},${Math.floor(at / 4) - 1}`);
    const r = augmentation(7);
    r.reset(1, i);
    const f = item.slice();
    flip.apply(f, [1, 4, 4], r);
    if (f[0] === 4) flips++;
  }
  assert.equal(seen.size, 9, `offsets seen: ${[...seen].join(' ')}`);
  assert.ok(flips > 150 && flips < 250, `flipped ${flips} of 400`);
  assert.throws(() => randomCrop(-1), /padding must be a non-negative integer/);
  assert.throws(() => randomHorizontalFlip(2), /p must be in \[0, 1\]/);
  assert.throws(() => flip.apply(new Float32Array(4), [4], augmentation(0)), /flipHorizontal: needs image items \[C, H, W\], got \[4\]/);
});
