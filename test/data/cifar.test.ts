import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadCifar10, parseCifarBatch } from '../../src/data/index.js';
import { encodeCifarBatch, tempDir, writeFile } from './fixtures.js';

const pixel = (batch: number) => (record: number, k: number) => (batch * 31 + record * 7 + k) % 256;

test('parseCifarBatch reads label bytes and CHW pixels scaled to [0, 1]', () => {
  const d = parseCifarBatch(encodeCifarBatch([3, 0, 9], pixel(0)), 'test_batch.bin');
  assert.deepEqual([d.length, d.itemShape, d.numClasses, Array.from(d.y)], [3, [3, 32, 32], 10, [3, 0, 9]]);
  // Record 2, green channel (plane 1), row 5, column 6 is byte 1024 + 5*32 + 6 of its pixels.
  const k = 1024 + 5 * 32 + 6;
  assert.equal(d.item(2).x[k], Math.fround(pixel(0)(2, k) / 255));
});

test('parseCifarBatch rejects truncated batches and labels outside 0..9, naming the file', () => {
  const bytes = encodeCifarBatch([1, 2], pixel(0));
  assert.throws(() => parseCifarBatch(bytes.subarray(0, 3073 + 100), 'data_batch_1.bin'), {
    name: 'DataFormatError',
    message: /^data_batch_1\.bin: truncated or not a CIFAR-10 binary batch: 3173 bytes .*1 full records \+ 100 bytes/,
  });
  assert.throws(() => parseCifarBatch(new Uint8Array(0), 'data_batch_1.bin'), { message: /^data_batch_1\.bin: empty CIFAR-10 batch/ });
  const badLabel = bytes.slice();
  badLabel[3073] = 10;
  assert.throws(() => parseCifarBatch(badLabel, 'data_batch_1.bin'), { message: /^data_batch_1\.bin: label 10 of record 1 is outside \[0, 10\)/ });
});

test('loadCifar10: train batches in numeric order, test batch, all, gzipped files, missing files', async () => {
  const { dir, cleanup } = tempDir();
  try {
    // Written out of order and with batch 10 to check numeric, not lexical, ordering.
    for (const b of [2, 10, 1]) writeFile(dir, `data_batch_${b}.bin`, encodeCifarBatch([b % 10, (b + 1) % 10], pixel(b)));
    writeFileSync(`${dir}/test_batch.bin`, gzipSync(encodeCifarBatch([7], pixel(99)))); // gzip is detected by magic, not name
    const train = await loadCifar10(dir, { split: 'train' });
    assert.deepEqual(Array.from(train.y), [1, 2, 2, 3, 0, 1]);
    assert.equal(train.item(4).x[0], Math.fround(pixel(10)(0, 0) / 255));
    const test_ = await loadCifar10(dir, { split: 'test' });
    assert.deepEqual([test_.length, test_.y[0]], [1, 7]);
    assert.equal(test_.item(0).x[100], Math.fround(pixel(99)(0, 100) / 255));
    assert.equal((await loadCifar10(dir, { split: 'all' })).length, 7);

    const { dir: empty, cleanup: cleanupEmpty } = tempDir();
    try {
      await assert.rejects(loadCifar10(empty, { split: 'train' }), { message: /no CIFAR-10 train batches/ });
    } finally {
      cleanupEmpty();
    }
  } finally {
    cleanup();
  }
});
