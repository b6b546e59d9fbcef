// The real MNIST test split (../shared/data/mnist-t10k, the official t10k files, gzipped).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { loadIdx, loadMnist } from '../../src/data/index.js';

const DIR = '../shared/data/mnist-t10k';
// Published class counts of the MNIST test set (digits 0..9).
const T10K_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

test('real MNIST t10k: 10,000 images of 28x28, the published label histogram, 8,000 / 2,000 split', { skip: !existsSync(DIR) && `${DIR} not present` }, async () => {
  const images = await loadIdx(`${DIR}/t10k-images-idx3-ubyte.gz`);
  assert.deepEqual([images.dtype, images.shape], ['uint8', [10000, 28, 28]]);

  const all = await loadMnist(DIR, { split: 'all' });
  assert.deepEqual([all.length, all.itemShape, all.numClasses], [10000, [1, 28, 28], 10]);
  assert.deepEqual(Array.from(all.classCounts()), T10K_HISTOGRAM);
  assert.deepEqual(Array.from(all.y.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  let min = Infinity, max = -Infinity;
  const values = all.values();
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.deepEqual([min, max], [0, 1]);
  // The loader's pixels are the file's bytes (stored as they are) / 255, in order.
  for (const i of [0, 12345, 7839999]) assert.equal(values[i], Math.fround(images.data[i]! / 255));
  assert.ok(all.x instanceof Uint8Array && all.divisor === 255);

  const train = await loadMnist(DIR, { split: 'train' });
  const test_ = await loadMnist(DIR, { split: 'test' });
  assert.deepEqual([train.length, test_.length], [8000, 2000]);
  assert.deepEqual(Array.from(test_.y), Array.from(all.y.subarray(8000)));
  const split = Array.from(train.classCounts(), (c, k) => c + test_.classCounts()[k]!);
  assert.deepEqual(split, T10K_HISTOGRAM);
  for (const c of test_.classCounts()) assert.ok(c >= 150, `every digit appears in the 2,000-image test split (${c})`);
});
