import assert from 'node:assert/strict';
import { test } from 'node:test';
import { syntheticShapes, type Dataset } from '../../src/data/index.js';

test('syntheticShapes is deterministic per seed, and item i depends only on (seed, i)', () => {
  const a = syntheticShapes({ n: 40, seed: 3 });
  const b = syntheticShapes({ n: 40, seed: 3 });
  assert.deepEqual(a.x, b.x);
  assert.deepEqual(a.y, b.y);
  const other = syntheticShapes({ n: 40, seed: 4 });
  assert.notDeepEqual(a.x, other.x);
  const prefix = syntheticShapes({ n: 15, seed: 3 });
  assert.deepEqual(prefix.x, a.x.subarray(0, 15 * 784));
});

test('syntheticShapes is class-balanced, in [0, 1], with the requested geometry', () => {
  for (const [options, shape] of [
    [{ n: 200 }, [1, 28, 28]],
    [{ n: 200, size: 32, channels: 3 as const }, [3, 32, 32]],
  ] as const) {
    const d = syntheticShapes(options);
    assert.deepEqual(d.itemShape, shape);
    assert.deepEqual(Array.from(d.classCounts()), new Array(10).fill(20));
    assert.deepEqual(Array.from(d.subset(0, 100).classCounts()), new Array(10).fill(10));
    let min = Infinity, max = -Infinity;
    for (const v of d.values()) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= 0 && max <= 1, `range [${min}, ${max}]`);
  }
  assert.throws(() => syntheticShapes({ channels: 2 as 1 }), /channels must be 1 or 3/);
  assert.throws(() => syntheticShapes({ size: 4 }), /size must be an integer >= 8/);
});

/** Test accuracy of multinomial logistic regression trained by plain SGD (float64, a few epochs). */
function softmaxRegressionAccuracy(train: Dataset, test: Dataset, epochs: number, lr: number): number {
  const d = train.itemSize, K = train.numClasses, W = new Float64Array(K * (d + 1)), logits = new Float64Array(K);
  const score = (x: Float32Array) => {
    for (let k = 0; k < K; k++) {
      let s = W[k * (d + 1) + d]!;
      for (let j = 0; j < d; j++) s += W[k * (d + 1) + j]! * x[j]!;
      logits[k] = s;
    }
  };
  for (let e = 0; e < epochs; e++) {
    for (let i = 0; i < train.length; i++) {
      const { x, y } = train.item(i);
      score(x);
      const max = Math.max(...logits);
      let z = 0;
      for (let k = 0; k < K; k++) z += (logits[k] = Math.exp(logits[k]! - max));
      for (let k = 0; k < K; k++) {
        const g = lr * (logits[k]! / z - (k === y ? 1 : 0));
        for (let j = 0; j < d; j++) W[k * (d + 1) + j]! -= g * x[j]!;
        W[k * (d + 1) + d]! -= g;
      }
    }
  }
  let correct = 0;
  for (let i = 0; i < test.length; i++) {
    const { x, y } = test.item(i);
    score(x);
    if (logits.indexOf(Math.max(...logits)) === y) correct++;
  }
  return correct / test.length;
}

test('syntheticShapes is learnable: even a linear classifier beats 90 % after 3 epochs on 2,000 images', () => {
  const [train, test_] = syntheticShapes({ n: 2500, seed: 11 }).split(2000);
  const accuracy = softmaxRegressionAccuracy(train, test_, 3, 0.05);
  assert.ok(accuracy > 0.9, `accuracy ${accuracy}`);
});

test('syntheticShapes({ start }) generates items [start, start + n) of the same sequence', () => {
  const all = syntheticShapes({ n: 30, seed: 6, size: 8, channels: 3 });
  const tail = syntheticShapes({ n: 12, start: 18, seed: 6, size: 8, channels: 3 });
  assert.deepEqual(tail.x, all.x.subarray(18 * 192));
  assert.deepEqual(tail.y, all.y.subarray(18));
  assert.throws(() => syntheticShapes({ start: -1 }), /start must be a non-negative integer/);
});

test('a generated dataset reads like the same items stored: subset, select, values, copyItem, channelStats', async () => {
  const { Dataset } = await import('../../src/data/index.js');
  const options = { n: 30, start: 5, seed: 2, size: 12, channels: 3 as const };
  const generated = syntheticShapes(options);
  // The stored twin: another instance's items materialized once through `x`, then read from the array.
  const stored = new Dataset(Uint8Array.from(syntheticShapes(options).x), generated.itemShape, generated.y, generated.numClasses, 'stored', generated.divisor);
  for (const [g, s] of [[generated, stored], [generated.subset(7, 19), stored.subset(7, 19)]] as const) {
    assert.deepEqual(g.values(), s.values());
    assert.deepEqual(g.values(3, 6), s.values(3, 6));
    const a = new Float32Array(g.itemSize), b = new Float32Array(g.itemSize);
    g.copyItem(4, a);
    s.copyItem(4, b);
    assert.deepEqual(a, b);
    assert.deepEqual(g.channelStats(), s.channelStats());
    assert.deepEqual(g.select([2, 0, 2]).values(), s.select([2, 0, 2]).values());
  }
  // A subset of a generated set is the generator's items at the shifted index, not item 0 again.
  assert.deepEqual(generated.subset(7, 8).values(), syntheticShapes({ n: 1, start: 12, seed: 2, size: 12, channels: 3 }).values());
});
