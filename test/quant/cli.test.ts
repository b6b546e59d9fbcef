// `slimgrad convert` and `slimgrad infer` end to end on a small slice of real MNIST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert } from '../../src/cli/commands/convert.js';
import { infer } from '../../src/cli/commands/infer.js';
import { UsageError } from '../../src/cli/command.js';
import { runJson } from '../helpers.js';
import { useQuantKernels } from '../../src/quant/index.js';

const MNIST = '../shared/data/mnist-t10k';

test('convert writes a packed file whose size matches the summary; infer runs it', { skip: !existsSync(MNIST) && 'MNIST data not present' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-quant-'));
  try {
    const file = join(dir, 'bnn.sgq');
    const c = await runJson(convert, ['--model', 'lenet', '--quant', 'bnn', '--untrained', '--out', file, '--json']);
    assert.equal(c.code, 0);
    assert.equal(statSync(file).size, c.json.fileBytes);
    assert.ok(Math.abs(c.json.payloadBytes - c.json.summaryBytes) / c.json.summaryBytes < 0.05, JSON.stringify(c.json));
    assert.ok(c.json.payloadBytes <= 16 * 1024);
    const r = await runJson(infer, [file, '--data', 'mnist', '--data-dir', MNIST, '--limit', '40', '--json']);
    assert.equal(r.code, 0);
    assert.equal(r.json.items, 40);
    assert.ok(r.json.testAccuracy >= 0 && r.json.testAccuracy <= 1);
  } finally {
    useQuantKernels(null);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('convert and infer reject bad options with usage errors', async () => {
  await assert.rejects(convert.run(['--model', 'lenet', '--untrained', '--out', 'x.sgq']), (e: Error) => e instanceof UsageError && /--quant is required/.test(e.message));
  await assert.rejects(convert.run(['--model', 'lenet', '--quant', 'bnn', '--out', 'x.sgq']), /--checkpoint FILE/);
  await assert.rejects(convert.run(['--model', 'vgg-small', '--quant', 'bnn', '--untrained', '--out', 'x.sgq']), /no quantized presets for model 'vgg-small'/);
  await assert.rejects(convert.run(['--model', 'transformer', '--quant', 'bnn', '--untrained', '--out', 'x.sgq']), /--model must be one of mlp, lenet, cnn, vgg-small, resnet20, got 'transformer'/);
  await assert.rejects(infer.run([]), /exactly one model file/);
  await assert.rejects(infer.run(['/nonexistent/model.sgq']), /cannot read deployed model \/nonexistent\/model.sgq/);
});
