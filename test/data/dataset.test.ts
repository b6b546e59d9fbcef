import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dataset, concatDatasets } from '../../src/data/index.js';

const make = (n: number, name = 'd') =>
  new Dataset(Float32Array.from({ length: n * 4 }, (_, j) => j), [2, 2], Int32Array.from({ length: n }, (_, i) => i % 3), 3, name);

test('subset and split share memory and keep order; select copies', () => {
  const d = make(10);
  const [train, test_] = d.split(8);
  assert.deepEqual([train.length, test_.length], [8, 2]);
  assert.deepEqual(Array.from(test_.item(0).x), [32, 33, 34, 35]);
  assert.equal(test_.y[1], 9 % 3);
  assert.equal(test_.x.buffer, d.x.buffer);
  const picked = d.select([9, 0]);
  assert.deepEqual([Array.from(picked.y), Array.from(picked.item(0).x)], [[0, 0], [36, 37, 38, 39]]);
  assert.notEqual(picked.x.buffer, d.x.buffer);
  assert.throws(() => d.subset(5, 11), /dataset 'd': subset\(5, 11\) is outside \[0, 10\]/);
  assert.throws(() => d.item(10), /item 10 is outside \[0, 10\)/);
  assert.throws(() => d.select([10]), /index 10 is outside/);
});

test('constructor checks sizes and labels; classCounts, channelStats and concat', () => {
  assert.throws(() => new Dataset(new Float32Array(7), [2, 2], new Int32Array(2), 3, 'bad'), /dataset 'bad': 7 values do not hold 2 items of shape \[2, 2\] \(8 values\)/);
  assert.throws(() => new Dataset(new Float32Array(4), [2, 2], Int32Array.of(3), 3, 'bad'), /label 3 of item 0 is outside \[0, 3\)/);
  assert.throws(() => new Dataset(new Float32Array(0), [0], new Int32Array(0), 3, 'bad'), /positive integer dimensions/);
  const d = make(4);
  assert.deepEqual(Array.from(d.classCounts()), [2, 1, 1]);
  // Channel 0 holds j with j%4 in {0,1}: 0,1,4,5,8,9,12,13 -> mean 6.5; channel 1 is that + 2.
  const { mean, std } = d.channelStats();
  assert.deepEqual(mean, [6.5, 8.5]);
  const values = [0, 1, 4, 5, 8, 9, 12, 13];
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - 6.5) ** 2, 0) / values.length);
  assert.ok(Math.abs(std[0]! - sd) < 1e-12 && Math.abs(std[1]! - sd) < 1e-12);
  const both = concatDatasets([d, make(2, 'e')], 'both');
  assert.deepEqual([both.length, Array.from(both.y)], [6, [0, 1, 2, 0, 0, 1]]);
  assert.deepEqual(Array.from(both.item(5).x), [4, 5, 6, 7]);
  const other = new Dataset(new Float32Array(3), [3], new Int32Array(1), 3, 'flat');
  assert.throws(() => concatDatasets([d, other], 'x'), /'flat' has items \[3\]/);
});
