// train's validation split, early stopping, safe writes and presets that fit the data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyQuantPreset } from '../../src/quant/models.js';
import { writeFileAtomic } from '../../src/io/write.js';
import { fsReason } from '../../src/io/checkpoint.js';
import { cli, lastJson } from './helpers.js';

test('--val-split holds out the end of the train split (test split untouched); --patience stops early', async () => {
  const r = await cli('train', '--model', 'mlp', '--data', 'synthetic', '--limit', '200', '--val-split', '0.25', '--epochs', '1', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.deepEqual([j.trainItems, j.valItems, j.testItems], [150, 50, 200]);
  assert.ok(j.valAccuracy >= 0 && j.valAccuracy <= 1);
  // A learning rate this small cannot improve validation accuracy for long: patience 1 stops the run.
  const s = await cli('train', '--model', 'mlp', '--data', 'synthetic', '--limit', '64', '--val-split', '0.5', '--lr', '1e-9', '--schedule', 'constant', '--epochs', '6', '--patience', '1', '--json');
  assert.equal(s.code, 0, s.stderr);
  assert.equal(lastJson(s).stopped, 'early-stopping');
  assert.ok(lastJson(s).steps < 6 * 1, `ran ${lastJson(s).steps} steps`);
});

test('--save: an existing file is kept without --force, replaced with it; no temporary file is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-save-'));
  try {
    const file = join(dir, 'm.safetensors');
    writeFileSync(file, 'keep me');
    const args = ['train', '--model', 'mlp', '--data', 'synthetic', '--limit', '32', '--epochs', '1', '--save', file];
    const refused = await cli(...args);
    assert.equal(refused.code, 1);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    assert.equal(refused.stdout, '', 'refused before training started');
    const forced = await cli(...args, '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(statSync(file).size > 1000);
    assert.deepEqual(readdirSync(dir), ['m.safetensors']);
    // The library writer: a failed rename leaves neither a half-written target nor the temporary file.
    assert.throws(() => writeFileAtomic(join(dir, 'nodir', 'x.bin'), new Uint8Array(4)), /directory .*nodir does not exist/);
    assert.throws(() => writeFileAtomic(file, new Uint8Array(4), { overwrite: false, what: '--out' }), /--out .*already exists/);
    assert.deepEqual(readdirSync(dir), ['m.safetensors']);
    assert.equal(fsReason({ code: 'EACCES', message: 'EACCES: permission denied, open x' }), 'permission denied');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quant presets build for the data: RGB 32x32 trains and converts; flat or tiny inputs are refused before training', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-shapes-'));
  try {
    const file = join(dir, 'rgb.safetensors');
    const r = await cli('train', '--model', 'lenet', '--quant', 'bnn', '--data', 'synthetic-rgb', '--limit', '64', '--epochs', '1', '--save', file, '--json');
    assert.equal(r.code, 0, r.stderr);
    const c = await cli('convert', '--checkpoint', file, '--out', join(dir, 'rgb.sgq'), '--json');
    assert.equal(c.code, 0, c.stderr);
    const i = await cli('infer', join(dir, 'rgb.sgq'), '--data', 'synthetic-rgb', '--limit', '64', '--json');
    assert.equal(i.code, 0, i.stderr);
    assert.equal(lastJson(i).testAccuracy, lastJson(r).testAccuracy);
    for (const preset of ['bnn', 'xnor', 'bwn', 'twn', 'w8a8']) {
      assert.throws(() => applyQuantPreset('lenet', preset, 0, [85], 2), new RegExp(`--quant ${preset} on --model lenet needs image input \\[C, H, W\\].*this data has \\[85\\]`));
      assert.throws(() => applyQuantPreset('lenet', preset, 0, [1, 6, 6], 2), /needs image input .*H, W >= \d+/);
    }
    assert.equal(applyQuantPreset('mlp', 'twn', 0, [85], 2).parameters().at(-1)!.shape[0], 2);
    assert.ok(!existsSync(join(dir, 'missing')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train --act auto:2 --json reports the allocation (bits per layer); --optimizer lamb and --act comet:0.02 train', async () => {
  const r = await cli('train', '--model', 'lenet', '--data', 'synthetic', '--limit', '128', '--batch-size', '32', '--epochs', '1', '--act', 'auto:2', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.equal(j.act, 'auto:2');
  assert.ok(j.actAllocation.meanBits <= 2 && j.actAllocation.meanBits >= 1, JSON.stringify(j.actAllocation));
  assert.ok(j.actAllocation.saves.length >= 1);
  for (const s of j.actAllocation.saves) assert.ok([1, 2, 4, 8].includes(s.bits) && typeof s.module === 'string' && s.numel > 0, JSON.stringify(s));
  const c = await cli('train', '--model', 'mlp', '--data', 'synthetic', '--limit', '64', '--epochs', '1', '--act', 'comet:0.02', '--optimizer', 'lamb', '--json');
  assert.equal(c.code, 0, c.stderr);
  assert.ok(Number.isFinite(lastJson(c).trainLoss) && lastJson(c).actAllocation === undefined);
});
