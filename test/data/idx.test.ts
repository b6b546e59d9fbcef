import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dataset, datasetFromIdx, loadIdx, loadMnist, parseIdx } from '../../src/data/index.js';
import { encodeIdx, tempDir, writeFile } from './fixtures.js';

test('parseIdx round-trips every IDX dtype (big-endian) and shape', () => {
  const cases = [
    ['uint8', [2, 3], [0, 1, 2, 253, 254, 255]],
    ['int8', [4], [-128, -1, 0, 127]],
    ['int16', [2, 2], [-32768, -2, 3, 32767]],
    ['int32', [3], [-2147483648, 65536, 2147483647]],
    ['float32', [2, 1, 2], [1.5, -0.25, 2 ** 70, -7]],
    ['float64', [2], [Math.PI, -1e-300]],
  ] as const;
  for (const [dtype, shape, values] of cases) {
    const parsed = parseIdx(encodeIdx(dtype, [...shape], values), `${dtype}.idx`);
    assert.equal(parsed.dtype, dtype);
    assert.deepEqual(parsed.shape, shape);
    assert.deepEqual(Array.from(parsed.data), values);
  }
});

test('parseIdx errors name the file and the problem', () => {
  const good = encodeIdx('uint8', [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 3), /^images\.idx: truncated IDX file/],
    [Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0), /^images\.idx: bad IDX magic 01 00 08 01/],
    [Uint8Array.of(0x1f, 0x8b, 8, 0), /^images\.idx: bad IDX magic .*gzip/],
    [Uint8Array.of(0, 0, 0x0a, 1, 0, 0, 0, 0), /^images\.idx: unsupported IDX dtype code 0x0a/],
    [good.subarray(0, 10), /^images\.idx: truncated IDX header/],
    [good.subarray(0, good.length - 1), /^images\.idx: truncated IDX data: shape \[2, 2, 2\] of uint8 needs 24 bytes, the file has 23/],
    [Uint8Array.of(...good, 0), /^images\.idx: 1 unexpected bytes after/],
  ];
  for (const [bytes, message] of cases) assert.throws(() => parseIdx(bytes, 'images.idx'), { name: 'DataFormatError', message });
});

test('datasetFromIdx scales pixels to [0, 1], adds the channel axis and checks counts and labels', () => {
  const images = parseIdx(encodeIdx('uint8', [2, 2, 3], [0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 255]), 'img');
  const labels = parseIdx(encodeIdx('uint8', [2], [3, 9]), 'lab');
  const names = { images: 'img', labels: 'lab', dataset: 'tiny' };
  const d = datasetFromIdx(images, labels, names);
  assert.ok(d instanceof Dataset);
  assert.deepEqual(d.itemShape, [1, 2, 3]);
  assert.deepEqual(Array.from(d.y), [3, 9]);
  assert.deepEqual(Array.from(d.item(0).x), [0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => Math.fround(v)));

  const threeLabels = parseIdx(encodeIdx('uint8', [3], [1, 2, 3]), 'lab');
  assert.throws(() => datasetFromIdx(images, threeLabels, names), { message: /^lab: 3 labels for 2 images in img: the counts must match/ });
  const badLabel = parseIdx(encodeIdx('uint8', [2], [1, 10]), 'lab');
  assert.throws(() => datasetFromIdx(images, badLabel, names), { message: /^lab: label 10 at index 1 is outside \[0, 10\)/ });
  const floatImages = parseIdx(encodeIdx('float32', [2, 1, 1], [0, 1]), 'img');
  assert.throws(() => datasetFromIdx(floatImages, labels, names), { message: /^img: images must be uint8, got float32/ });
});

test('loadIdx reads raw and gzipped files alike; a corrupt gzip names the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bytes = encodeIdx('uint8', [5], [9, 8, 7, 6, 5]);
    const raw = await loadIdx(writeFile(dir, 'raw-idx1-ubyte', bytes));
    const gz = await loadIdx(writeFile(dir, 'gz-idx1-ubyte', bytes, true));
    assert.deepEqual(Array.from(gz.data), [9, 8, 7, 6, 5]);
    assert.deepEqual(gz, raw);
    const broken = writeFile(dir, 'broken-idx1-ubyte.gz', Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2, 3));
    await assert.rejects(loadIdx(broken), { name: 'DataFormatError', message: /broken-idx1-ubyte\.gz: corrupt gzip data/ });
    await assert.rejects(loadIdx(`${dir}/missing`), { message: /missing: cannot read/ });
  } finally {
    cleanup();
  }
});

/** Writes MNIST-named files of 2x2 images whose first pixel encodes the item index. */
function writeMnistLike(dir: string, prefix: string, n: number, gzip: boolean, firstPixel: (i: number) => number, sep = '-'): number[] {
  const pixels = new Uint8Array(n * 4);
  const labels = Array.from({ length: n }, (_, i) => (i * 7) % 10);
  for (let i = 0; i < n; i++) pixels[i * 4] = firstPixel(i);
  writeFile(dir, `${prefix}-images${sep}idx3-ubyte`, encodeIdx('uint8', [n, 2, 2], pixels), gzip);
  writeFile(dir, `${prefix}-labels${sep}idx1-ubyte`, encodeIdx('uint8', [n], labels), gzip);
  return labels;
}

test('loadMnist with only t10k files: first 8,000 train, last 2,000 test, in file order', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const labels = writeMnistLike(dir, 't10k', 10000, true, (i) => i % 251);
    const train = await loadMnist(dir, { split: 'train' });
    const test = await loadMnist(dir, { split: 'test' });
    const all = await loadMnist(dir, { split: 'all' });
    assert.equal(train.length, 8000);
    assert.equal(test.length, 2000);
    assert.equal(all.length, 10000);
    assert.deepEqual(train.itemShape, [1, 2, 2]);
    assert.deepEqual(Array.from(test.y), labels.slice(8000));
    assert.equal(test.item(0).x[0], Math.fround((8000 % 251) / 255));
    assert.equal(train.item(7999).x[0], Math.fround((7999 % 251) / 255));
  } finally {
    cleanup();
  }
});

test('loadMnist with train and t10k files: the standard split; a missing half names the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeMnistLike(dir, 'train', 30, false, () => 10, '.'); // the train-images.idx3-ubyte spelling of some mirrors
    writeMnistLike(dir, 't10k', 20, true, () => 200);
    const train = await loadMnist(dir, { split: 'train' });
    const test = await loadMnist(dir, { split: 'test' });
    const all = await loadMnist(dir, { split: 'all' });
    assert.deepEqual([train.length, test.length, all.length], [30, 20, 50]);
    assert.equal(train.item(29).x[0], Math.fround(10 / 255));
    assert.equal(test.item(0).x[0], Math.fround(200 / 255));
    assert.equal(all.item(30).x[0], Math.fround(200 / 255));

    const { dir: half, cleanup: cleanupHalf } = tempDir();
    try {
      writeFile(half, 't10k-images-idx3-ubyte', encodeIdx('uint8', [1, 2, 2], [0, 0, 0, 0]));
      await assert.rejects(loadMnist(half, { split: 'test' }), { message: /t10k-images-idx3-ubyte: found without its labels file/ });
      writeFile(half, 't10k-labels-idx1-ubyte', encodeIdx('uint8', [2], [0, 1]));
      await assert.rejects(loadMnist(half, { split: 'test' }), { message: /t10k-labels-idx1-ubyte: 2 labels for 1 images in .*t10k-images-idx3-ubyte/ });
    } finally {
      cleanupHalf();
    }
    await assert.rejects(loadMnist(`${dir}/nowhere`, { split: 'train' }), { message: /nowhere: cannot read the MNIST directory: no such directory/ });
  } finally {
    cleanup();
  }
});
