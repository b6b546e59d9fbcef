import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { UsageError } from '../../src/cli/command.js';
import { data } from '../../src/cli/commands/data.js';
import { loadDataset, syntheticShapes } from '../../src/data/index.js';
import { encodeNpy, encodeZip, tempDir, writeFile } from './fixtures.js';

/** Runs `slimgrad data`, returning its exit code and stdout lines. */
async function capture(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const log = console.log;
  const write = process.stdout.write;
  console.log = (...parts: unknown[]) => void lines.push(parts.join(' '));
  // Only our strings: the test runner reports through the same stream with binary chunks.
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' ? lines.push(...chunk.trimEnd().split('\n')) > 0 : (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest)) as typeof process.stdout.write;
  try {
    return { code: await data.run(args), lines };
  } finally {
    console.log = log;
    process.stdout.write = write;
  }
}

test('loadDataset: synthetic splits 8,000 / 2,000 of the same 10,000 items; npz by Keras keys; clear errors', async () => {
  const train = await loadDataset('synthetic', { split: 'train', seed: 2 });
  const test_ = await loadDataset('synthetic-rgb', { split: 'test' });
  assert.deepEqual([train.length, train.itemShape, test_.length, test_.itemShape], [8000, [1, 28, 28], 2000, [3, 32, 32]]);
  assert.deepEqual(train.x.subarray(0, 784 * 3), syntheticShapes({ n: 3, seed: 2 }).x);

  const { dir, cleanup } = tempDir();
  try {
    const file = writeFile(
      dir,
      'k.npz',
      encodeZip([
        { name: 'x_test.npy', data: encodeNpy('<f4', [2, 3], [1, 2, 3, 4, 5, 6]), deflate: true },
        { name: 'y_test.npy', data: encodeNpy('<i8', [2], [1, 0]), deflate: true },
      ]),
    );
    const fromNpz = await loadDataset(file, { split: 'test' });
    assert.deepEqual([fromNpz.itemShape, Array.from(fromNpz.y)], [[3], [1, 0]]);
    await assert.rejects(loadDataset(file, { split: 'train' }), { message: /k\.npz: no array 'x_train' \(arrays: x_test, y_test\)/ });
  } finally {
    cleanup();
  }
  await assert.rejects(loadDataset('mnist', { split: 'train' }), { message: /dataset 'mnist' reads files: give the directory/ });
  await assert.rejects(loadDataset('imagenet', { split: 'train' }), { message: /unknown dataset 'imagenet' \(known: synthetic, synthetic-rgb, mnist, cifar10, <file>\.npz\)/ });
});

test('slimgrad data prints class counts and ends with one JSON object', async () => {
  const { code, lines } = await capture(['synthetic', '--split', 'test', '--json']);
  assert.equal(code, 0);
  const report = JSON.parse(lines.at(-1)!);
  assert.deepEqual([report.items, report.itemShape, report.classCounts], [2000, [1, 28, 28], new Array(10).fill(200)]);
  await assert.rejects(capture(['synthetic', '--split', 'val']), (e) => e instanceof UsageError && /--split must be one of train, test, all/.test(e.message));
  await assert.rejects(capture(['nope']), (e) => e instanceof UsageError && /unknown dataset 'nope'/.test(e.message));
});

test('slimgrad data reads the real MNIST t10k files', { skip: !existsSync('../shared/data/mnist-t10k') && 'no shared data' }, async () => {
  const { code, lines } = await capture(['mnist', '--data-dir', '../shared/data/mnist-t10k', '--split', 'all', '--json']);
  assert.equal(code, 0);
  const report = JSON.parse(lines.at(-1)!);
  assert.deepEqual([report.items, report.classCounts[1]], [10000, 1135]);
  assert.ok(Math.abs(report.mean[0] - 0.1325) < 1e-3, `mean ${report.mean[0]}`);
});
