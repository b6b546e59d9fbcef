import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataLoader, Dataset, concatDatasets, datasetFromIdx, normalize, parseCifarBatch, randomCrop, randomHorizontalFlip } from '../../src/data/index.js';
import { KeyedRandom } from '../../src/data/random.js';

/** Random CIFAR-10 batch bytes: n records of 1 label byte + 3072 pixel bytes. */
function cifarBytes(n: number, seed: number): Uint8Array {
  const r = new KeyedRandom(seed, 99);
  r.reset(0, 0);
  const bytes = new Uint8Array(n * 3073);
  for (let i = 0; i < n; i++) {
    bytes[i * 3073] = r.int(10);
    for (let k = 1; k < 3073; k++) bytes[i * 3073 + k] = r.int(256);
  }
  return bytes;
}

/** The float path the datasets used before: pixels converted to float32 once, at load. */
function floatCopy(d: Dataset): Dataset {
  const x = new Float32Array(d.x.length);
  for (let i = 0; i < x.length; i++) x[i] = d.x[i]! / 255;
  return new Dataset(x, d.itemShape, d.y, d.numClasses, `${d.name}-float`);
}

test('8-bit datasets give batches bit-identical to the float32 path, with augmentation and normalization', () => {
  const bytes = cifarBytes(37, 1);
  const u8 = parseCifarBatch(bytes, 'random.bin');
  assert.ok(u8.x instanceof Uint8Array && u8.divisor === 255);
  assert.equal(u8.x.byteLength, 37 * 3072); // a quarter of the float32 size
  const f32 = floatCopy(u8);
  const { mean, std } = f32.channelStats();
  assert.deepEqual(u8.channelStats(), { mean, std });
  const transforms = [randomCrop(4), randomHorizontalFlip(), normalize(mean, std)];
  for (const [a, b] of [[u8, f32], [u8.select([5, 3, 30, 3]), f32.select([5, 3, 30, 3])], [concatDatasets([u8, u8.subset(2, 9)], 'c'), concatDatasets([f32, f32.subset(2, 9)], 'c')]] as const) {
    const la = new DataLoader(a, { batchSize: 8, seed: 4, transforms });
    const lb = new DataLoader(b, { batchSize: 8, seed: 4, transforms });
    for (const epoch of [0, 1]) {
      const ba = [...la.arrays(epoch)], bb = [...lb.arrays(epoch)];
      assert.equal(ba.length, bb.length);
      ba.forEach((batch, i) => {
        assert.deepEqual(batch.x, bb[i]!.x);
        assert.deepEqual(batch.y, bb[i]!.y);
      });
    }
    assert.deepEqual(a.item(3).x, b.item(3).x);
    assert.deepEqual(a.values(1, 4), b.values(1, 4));
  }
  // Mixed storage concatenates as float32 values.
  const mixed = concatDatasets([u8.subset(0, 2), f32.subset(2, 4)], 'mixed');
  assert.ok(mixed.x instanceof Float32Array);
  assert.deepEqual(mixed.values(), f32.values(0, 4));
});

test('IDX images are kept as the file bytes, not copied, and convert like the float path', () => {
  const pixels = Uint8Array.from({ length: 6 * 4 * 4 }, (_, i) => (i * 37) % 256);
  const labels = Uint8Array.from([0, 1, 2, 3, 4, 5]);
  const d = datasetFromIdx({ dtype: 'uint8', shape: [6, 4, 4], data: pixels }, { dtype: 'uint8', shape: [6], data: labels }, { images: 'i', labels: 'l', dataset: 'tiny' });
  assert.equal(d.x, pixels);
  assert.deepEqual(d.values(), Float32Array.from(pixels, (v) => v / 255));
});
