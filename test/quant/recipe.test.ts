// The training schedule of `bench quant --accuracy` (the same for every preset and the float twin):
// linear warm-up over the first --warmup fraction of the steps, then cosine decay from --lr to 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recipeSchedule, run } from '../../bench/quant.js';
import { UsageError } from '../../src/cli/command.js';

test('recipe schedule: linear warm-up to the peak, then cosine decay to 0 over the remaining steps (closed form)', () => {
  const lr = 1e-2, steps = 1020, warm = 51; // 10 epochs of 6,500 items at batch 64, 5 % warm-up
  const s = recipeSchedule({ lr, warmup: 0.05 }, steps);
  for (let t = 0; t < warm; t++) assert.ok(Math.abs(s.at(t) - (lr * (t + 1)) / warm) < 1e-15, `warm-up step ${t}`);
  for (let t = warm; t < steps; t++) {
    const expected = 0.5 * lr * (1 + Math.cos((Math.PI * (t - warm)) / (steps - warm)));
    assert.ok(Math.abs(s.at(t) - expected) < 1e-15, `cosine step ${t}: ${s.at(t)} vs ${expected}`);
  }
  assert.ok(s.at(steps - 1) < lr * 1e-4, 'ends near 0');
  const plain = recipeSchedule({ lr, warmup: 0 }, steps);
  assert.equal(plain.at(0), lr, 'no warm-up: starts at the peak');
  assert.ok(Math.abs(plain.at(steps / 2) - lr / 2) < 1e-15);
});

test('bench quant: --lr and --warmup outside their ranges are usage errors naming the option', async () => {
  await assert.rejects(run(['--accuracy', '--lr', '0']), (e: Error) => e instanceof UsageError && /--lr/.test(e.message));
  await assert.rejects(run(['--accuracy', '--lr', 'fast']), (e: Error) => e instanceof UsageError && /--lr/.test(e.message));
  await assert.rejects(run(['--accuracy', '--warmup', '1']), (e: Error) => e instanceof UsageError && /--warmup/.test(e.message));
  await assert.rejects(run(['--accuracy', '--warmup=-0.1']), (e: Error) => e instanceof UsageError && /--warmup/.test(e.message));
  await assert.rejects(run(['--accuracy', '--warmup', '']), (e: Error) => e instanceof UsageError && /--warmup/.test(e.message));
});
