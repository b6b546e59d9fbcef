import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memory } from '../../src/core/ledger.js';
import { scope } from '../../src/core/scope.js';
import { DataLoader, Dataset, randomCrop, randomHorizontalFlip, normalize } from '../../src/data/index.js';

/** n items of shape [1, 2, 3] whose values are 100*i + k, labelled i % 5. */
function numbered(n: number): Dataset {
  const x = Float32Array.from({ length: n * 6 }, (_, j) => 100 * Math.floor(j / 6) + (j % 6));
  const y = Int32Array.from({ length: n }, (_, i) => i % 5);
  return new Dataset(x, [1, 2, 3], y, 5, 'numbered');
}

const collect = (loader: DataLoader, epoch: number) => [...loader.arrays(epoch)];

test('shuffled order: a permutation, the same for the same seed and epoch, different across epochs and seeds', () => {
  const data = numbered(103);
  const a = new DataLoader(data, { batchSize: 10, seed: 42 });
  const b = new DataLoader(data, { batchSize: 10, seed: 42 });
  assert.deepEqual(a.order(3), b.order(3));
  assert.deepEqual([...a.order(0)].sort((p, q) => p - q), Array.from({ length: 103 }, (_, i) => i));
  assert.notDeepEqual(a.order(0), a.order(1));
  assert.notDeepEqual(a.order(0), new DataLoader(data, { batchSize: 10, seed: 43 }).order(0));
  assert.deepEqual(Array.from(new DataLoader(data, { batchSize: 10, shuffle: false }).order(5)), Array.from({ length: 103 }, (_, i) => i));
});

test('batches hold the items of the order, labels alongside; last partial batch kept or dropped', () => {
  const data = numbered(23);
  const keep = new DataLoader(data, { batchSize: 5, seed: 1 });
  const batches = collect(keep, 2);
  assert.equal(keep.numBatches, 5);
  assert.deepEqual(batches.map((b) => b.shape), [[5, 1, 2, 3], [5, 1, 2, 3], [5, 1, 2, 3], [5, 1, 2, 3], [3, 1, 2, 3]]);
  assert.deepEqual(batches.flatMap((b) => Array.from(b.indices)), Array.from(keep.order(2)));
  for (const b of batches) {
    b.indices.forEach((i, j) => {
      assert.equal(b.y[j], i % 5);
      assert.deepEqual(Array.from(b.x.subarray(j * 6, (j + 1) * 6)), [0, 1, 2, 3, 4, 5].map((k) => 100 * i + k));
    });
  }
  const drop = new DataLoader(data, { batchSize: 5, seed: 1, dropLast: true, flatten: true });
  const dropped = collect(drop, 2);
  assert.deepEqual([drop.numBatches, drop.itemsPerEpoch, dropped.length], [4, 20, 4]);
  assert.deepEqual(dropped[0]!.shape, [5, 6]);
  assert.deepEqual(dropped.map((b) => Array.from(b.indices)), batches.slice(0, 4).map((b) => Array.from(b.indices)));
  assert.equal(new DataLoader(numbered(3), { batchSize: 5, dropLast: true }).numBatches, 0);
  assert.throws(() => new DataLoader(data, { batchSize: 0 }), /batchSize must be a positive integer, got 0/);
  assert.throws(() => keep.fillBatch([23], 0, new Float32Array(6), new Int32Array(1)), /index 23 is outside dataset 'numbered' \[0, 23\)/);
  assert.throws(() => keep.order(-1), /epoch must be a non-negative integer, got -1/);
});

test('augmentation depends on (seed, epoch, item), not on batch size; the dataset is never modified', () => {
  const data = numbered(40);
  const before = data.x.slice();
  const transforms = [randomCrop(1), randomHorizontalFlip(), normalize(50, 2)];
  const byItem = (loader: DataLoader, epoch: number) => {
    const out = new Map<number, number[]>();
    for (const b of loader.arrays(epoch)) b.indices.forEach((i, j) => out.set(i, Array.from(b.x.subarray(j * 6, (j + 1) * 6))));
    return out;
  };
  const small = byItem(new DataLoader(data, { batchSize: 3, seed: 9, transforms }), 1);
  const large = byItem(new DataLoader(data, { batchSize: 16, seed: 9, transforms, shuffle: false }), 1);
  assert.deepEqual(new Map([...small].sort((a, b) => a[0] - b[0])), large);
  const otherEpoch = byItem(new DataLoader(data, { batchSize: 16, seed: 9, transforms, shuffle: false }), 2);
  assert.notDeepEqual(otherEpoch, large);
  assert.deepEqual(data.x, before);
  // Not the identity: some items were shifted or flipped.
  const plain = byItem(new DataLoader(data, { batchSize: 16, shuffle: false, transforms: [normalize(50, 2)] }), 1);
  assert.notDeepEqual(plain, large);
});

test('epoch() yields float32/int32 tensors equal to the array batches, allocated per batch and freed by the caller', () => {
  const data = numbered(25);
  const loader = new DataLoader(data, { batchSize: 10, seed: 3, transforms: [randomHorizontalFlip()] });
  const expected = collect(loader, 0);
  const base = memory().current.activation;
  let i = 0;
  for (const { x, y, indices } of loader.epoch(0)) {
    const e = expected[i++]!;
    assert.deepEqual([x.dtype, x.shape, y.dtype, y.shape], ['float32', e.shape, 'int32', [e.y.length]]);
    assert.deepEqual(x.values(), e.x);
    assert.deepEqual(y.values(), e.y);
    assert.deepEqual(indices, e.indices);
    // One batch live at a time: x (10*6 floats) + y (10 ints) at most.
    assert.ok(memory().current.activation - base <= 10 * 6 * 4 + 10 * 4);
    x.dispose();
    y.dispose();
  }
  assert.equal(i, 3);
  assert.equal(memory().current.activation, base);

  // Or let a scope own them.
  scope(() => {
    for (const { x } of new DataLoader(data, { batchSize: 25, flatten: true }).epoch(0)) assert.deepEqual(x.shape, [25, 6]);
  });
  assert.equal(memory().current.activation, base);
});
