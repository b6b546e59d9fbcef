import { test } from 'node:test';
import assert from 'node:assert/strict';
import { train } from '../../src/cli/commands/train.js';
import { UsageError } from '../../src/cli/command.js';
import { arena } from '../../src/core/arena.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy, encodeZip } from '../data/fixtures.js';
import { runJson } from '../helpers.js';

// A tiny .npz (300 train / 100 test 8x8 images) keeps these CLI runs to a second.
const file = join(mkdtempSync(join(tmpdir(), 'slimgrad-mem-')), 'tiny.npz');
{
  const arr = (name: string, descr: '|u1', shape: number[], f: (i: number) => number) =>
    ({ name: `${name}.npy`, data: encodeNpy(descr, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i))), deflate: false });
  writeFileSync(file, encodeZip([
    arr('x_train', '|u1', [300, 8, 8], (i) => (i * 37) % 256), arr('y_train', '|u1', [300], (i) => i % 10),
    arr('x_test', '|u1', [100, 8, 8], (i) => (i * 11) % 256), arr('y_test', '|u1', [100], (i) => i % 10),
  ]));
}

/** Runs `train` in this process (on the default backend, as before any CLI setup); returns its JSON report. */
async function trainJson(args: string[]): Promise<Record<string, any>> {
  try {
    const { code, json } = await runJson(train, args);
    assert.equal(code, 0);
    return json;
  } finally {
    arena().limitBytes = Infinity;
  }
}

const small = ['--model', 'mlp', '--data', file, '--epochs', '1', '--batch-size', '100', '--optimizer', 'sgd', '--lr', '0.05'];

test('train --json reports memory as the process sees it, under a --memory-limit that holds', async () => {
  const out = await trainJson([...small, '--memory-limit', '16MiB', '--json']);
  assert.equal(out.memoryLimitBytes, 16 * 2 ** 20);
  assert.ok(out.arenaHighWaterBytes <= 16 * 2 ** 20, `arena ${out.arenaHighWaterBytes}`);
  assert.ok(out.arenaHighWaterBytes >= out.peakBytes, 'the arena holds at least what the ledger counts');
  assert.ok(out.baseRssBytes > 0 && out.peakRssBytes >= out.baseRssBytes, `rss ${out.baseRssBytes} -> ${out.peakRssBytes}`);
});

test('train --memory-limit too small for the batch is one clear error naming tensor, limit, batch and mode', async () => {
  // The parameters fit, their gradients or the batch's activations do not.
  await assert.rejects(() => train.run([...small, '--memory-limit', '1700KiB']), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /(gradient|activation|workspace) tensor float32 \[\d+(, \d+)*\]/);
    assert.match(e.message, /memory limit of 1\.7 MiB/);
    assert.match(e.message, /--batch-size 100 with --act off/);
    return true;
  });
  arena().limitBytes = Infinity;
  await assert.rejects(() => train.run([...small, '--memory-limit', '12 parsecs']), /--memory-limit: expected a positive size/);
});
