// `slimgrad quantize` end to end on the PyTorch-exported CNN: .sgq and QDQ .onnx written, the
// .sgq reloads and scores like the command's own report, bad options are usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantize } from '../../src/cli/commands/quantize.js';
import { UsageError } from '../../src/cli/command.js';
import { runJson } from '../helpers.js';
import { loadDeployed } from '../../src/io/quant.js';
import { importOnnx } from '../../src/io/onnx/import.js';
import { runDeployed } from '../../src/quant/runtime.js';
import { loadDataset } from '../../src/data/catalog.js';
import { saveModule } from '../../src/io/checkpoint.js';
import { createModel } from '../../src/nn/models.js';

const MODEL = fileURLToPath(new URL('../fixtures/onnx/torch_cnn.onnx', import.meta.url));


test('slimgrad quantize writes a deployed .sgq and a QDQ .onnx that score as reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-quantize-'));
  try {
    const sgq = join(dir, 'm.sgq'), onnx = join(dir, 'm.qdq.onnx');
    const { code, json: r } = await runJson(quantize, [MODEL, '--method', 'rtn', '--w-bits', '8', '--a-bits', '8', '--calib-items', '32', '--eval-items', '300', '--data-dir', '../shared/data/mnist-t10k', '--out', sgq, '--onnx-out', onnx, '--json']);
    assert.equal(code, 0);
    assert.equal(r.layers.length, 4);
    assert.deepEqual(r.written.map((w: { file: string }) => w.file), [sgq, onnx]);
    assert.ok(r.testAccuracy >= r.floatTestAccuracy - 0.01, `W8A8 ${r.testAccuracy} vs float ${r.floatTestAccuracy}`);
    // Fresh load of the file, scored independently of the command.
    const test = (await loadDataset('mnist', { split: 'test', dataDir: '../shared/data/mnist-t10k' })).subset(0, 300);
    const y = runDeployed(loadDeployed(sgq), test.values(), [300, 1, 28, 28]).data;
    let correct = 0;
    for (let i = 0; i < 300; i++) {
      const row = Array.from(y.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === test.y[i]) correct++;
    }
    assert.equal(correct / 300, r.testAccuracy);
    assert.throws(() => importOnnx(readFileSync(onnx), onnx), /unsupported ONNX ops: .*QuantizeLinear \(node/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('slimgrad quantize: bad options are usage errors', async () => {
  await assert.rejects(quantize.run([MODEL, '--method', 'bogus', '--out', 'x.sgq']), (e) => e instanceof UsageError && /adaround/.test(e.message));
  await assert.rejects(quantize.run([MODEL, '--w-bits', '9', '--out', 'x.sgq']), UsageError);
  await assert.rejects(quantize.run([MODEL]), /--out/);
  await assert.rejects(quantize.run(['model.pt', '--out', 'x.sgq']), /\.onnx or \.safetensors/);
});

test('slimgrad quantize: a QAT checkpoint is refused (convert deploys it); a checkpoint without model metadata needs --arch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-quantize-meta-'));
  try {
    const m = createModel('lenet', [1, 28, 28], 10);
    const bare = join(dir, 'bare.safetensors'), qat = join(dir, 'qat.safetensors');
    saveModule(m, bare);
    saveModule(m, qat, { model: 'lenet', quant: 'twn' });
    m.dispose();
    await assert.rejects(quantize.run([qat, '--eval-items', '0', '--out', join(dir, 'x.sgq')]), (e) => e instanceof UsageError && /--quant twn.*slimgrad convert --checkpoint/.test(e.message));
    await assert.rejects(quantize.run([bare, '--eval-items', '0', '--out', join(dir, 'x.sgq')]), (e) => e instanceof UsageError && /does not name its model: pass --arch/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('slimgrad quantize reads the dataset a train --save checkpoint records; --data with other items is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-quantize-data-'));
  try {
    const m = createModel('lenet', [1, 28, 28], 10);
    const ckpt = join(dir, 'lenet.safetensors');
    saveModule(m, ckpt, { model: 'lenet', data: 'synthetic', itemShape: '[1,28,28]', classes: '10', seed: '1' });
    m.dispose();
    // No --data / --data-dir: the recorded 'synthetic' set (mnist would need a folder).
    const { code, json: r } = await runJson(quantize, [ckpt, '--calib-items', '8', '--eval-items', '20', '--out', join(dir, 'x.sgq'), '--json']);
    assert.equal(code, 0);
    assert.deepEqual([(r as { data: string }).data, (r as { evalItems: number }).evalItems], ['synthetic', 20]);
    await assert.rejects(quantize.run([ckpt, '--data', 'synthetic-rgb', '--eval-items', '0', '--out', join(dir, 'y.sgq')]), (e) => e instanceof UsageError && /trained on items \[1,28,28\] with 10 classes; --data synthetic-rgb has \[3,32,32\]/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
