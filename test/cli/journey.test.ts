// The user's journey for every quantized preset: train one epoch on real MNIST, save, convert, and
// run `infer` in a fresh process; its predictions must equal, item for item, those of the deployed
// model in the converting process (a Buffer-decoding bug once made them chance-level).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSplits } from '../../src/data/splits.js';
import { loadModule } from '../../src/io/checkpoint.js';
import { applyQuantPreset, convert, quantPresets, runDeployed, useQuantKernels } from '../../src/quant/index.js';
import { predict } from '../../src/train/trainer.js';
import { cli, cliFresh, cliFreshBatch, lastJson } from './helpers.js';

const MNIST = '../shared/data/mnist-t10k';
const ITEMS = 256;
// Batches of 16: 16 optimizer steps on the 256 items, enough for every preset (SmartDeal's pruned
// segments learn slower in the first steps) to leave chance level.
// Every preset, on lenet (the only model with all five; the MLP presets are built in train-options.test.ts).
const CASES: [model: string, preset: string][] = quantPresets.map((p) => ['lenet', p]);

function argmaxRows(data: Float32Array, rows: number, classes: number): number[] {
  return Array.from({ length: rows }, (_, i) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (data[i * classes + j]! > data[i * classes + best]!) best = j;
    return best;
  });
}

test('journey for every quant preset: train, save, convert, then infer in a fresh process predicts item for item as in process', { skip: !existsSync(MNIST) && 'MNIST data not present' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-journey-'));
  try {
    const { test: testSet } = await loadSplits('mnist', { dataDir: MNIST, limit: ITEMS });
    const expected: { name: string; sgq: string; preds: string; want: number[]; correct: number }[] = [];
    for (const [modelName, preset] of CASES) {
      const name = `${modelName}-${preset}`;
      const ckpt = join(dir, `${name}.safetensors`), sgq = join(dir, `${name}.sgq`), preds = join(dir, `${name}.txt`);
      const t = await cli('train', '--model', modelName, '--quant', preset, '--data', 'mnist', '--data-dir', MNIST, '--epochs', '1', '--limit', String(ITEMS), '--batch-size', '16', '--lr', '3e-3', '--save', ckpt, '--json');
      assert.equal(t.code, 0, `${name}: ${t.stderr}`);
      const c = await cli('convert', '--checkpoint', ckpt, '--out', sgq, '--json');
      assert.equal(c.code, 0, `${name}: ${c.stderr}`);
      assert.equal(lastJson(c).quant, preset);

      // In process: the trained model as convert rebuilds it, and the deployed model made from it.
      const model = applyQuantPreset(modelName, preset, 0);
      loadModule(model, ckpt);
      const logits = runDeployed(convert(model, [1, 28, 28]), testSet.values(), [testSet.length, 1, 28, 28]);
      const want = argmaxRows(logits.data, testSet.length, 10);
      const correct = want.filter((p, i) => p === testSet.y[i]).length;
      assert.ok(correct / ITEMS > 0.15, `${name}: accuracy ${correct / ITEMS} after one epoch (chance is 0.1)`);
      // The packed model agrees with the float-simulated quantized model it was converted from.
      const { predictions } = predict(model, testSet);
      const agree = want.filter((p, i) => p === predictions[i]).length / ITEMS;
      assert.ok(agree >= 0.9, `${name}: deployed and trained model agree on ${agree} of the items`);
      model.dispose();
      expected.push({ name, sgq, preds, want, correct });
    }

    const r = cliFreshBatch(expected.map((e) => ['infer', e.sgq, '--data', 'mnist', '--data-dir', MNIST, '--limit', String(ITEMS), '--predictions', e.preds, '--json']));
    assert.equal(r.code, 0, r.stderr);
    const reports = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.equal(reports.length, expected.length);
    expected.forEach((e, k) => {
      const got = readFileSync(e.preds, 'utf8').trim().split('\n').map(Number);
      assert.equal(got.length, ITEMS, e.name);
      const differ = got.flatMap((p, i) => (p === e.want[i] ? [] : [i]));
      assert.deepEqual(differ, [], `${e.name}: fresh-process predictions differ at items ${differ.slice(0, 10)}`);
      assert.equal(reports[k].testAccuracy, e.correct / ITEMS, e.name);
    });
  } finally {
    useQuantKernels(null);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eval reports loss, accuracy, confusion matrix and per-class precision/recall of a train --save checkpoint', { skip: !existsSync(MNIST) && 'MNIST data not present' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-eval-'));
  try {
    const ckpt = join(dir, 'lenet.safetensors');
    const t = await cli('train', '--model', 'lenet', '--data', 'mnist', '--data-dir', MNIST, '--epochs', '1', '--limit', String(ITEMS), '--save', ckpt, '--json');
    assert.equal(t.code, 0, t.stderr);
    const e = cliFresh(['eval', ckpt, '--data-dir', MNIST, '--limit', String(ITEMS), '--json']);
    assert.equal(e.code, 0, e.stderr);
    const j = lastJson(e);
    // The same test items and weights as at the end of training: the same accuracy and loss.
    assert.equal(j.items, ITEMS);
    assert.equal(j.accuracy, lastJson(t).testAccuracy);
    assert.ok(Math.abs(j.loss - lastJson(t).testLoss) < 1e-6, `${j.loss} vs ${lastJson(t).testLoss}`);
    assert.equal(j.confusion.flat().reduce((a: number, b: number) => a + b, 0), ITEMS);
    const diagonal = j.confusion.reduce((s: number, row: number[], i: number) => s + row[i]!, 0);
    assert.equal(diagonal / ITEMS, j.accuracy);
    for (let k = 0; k < 10; k++) {
      const col = j.confusion.reduce((s: number, row: number[]) => s + row[k]!, 0), row = j.confusion[k].reduce((a: number, b: number) => a + b, 0);
      assert.equal(j.precision[k], col ? j.confusion[k][k] / col : 0);
      assert.equal(j.recall[k], row ? j.confusion[k][k] / row : 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
