// Nested precision (vertical-layered representation + once-QAT): one 8-bit file from which every
// width 2..8 is read by dropping low bits; the deployed model at each width, run by `slimgrad infer
// --bits N` in a fresh process, predicts what the in-process model at that width predicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { loadModule } from '../../src/io/checkpoint.js';
import { loadSplits } from '../../src/data/splits.js';
import { predict } from '../../src/train/trainer.js';
import {
  applyQuantPreset, convert, decodeDeployed, encodeDeployed, nestedCode, payloadBytes, runDeployed, setNestedBits, summary, withBits,
  QuantLinear,
} from '../../src/quant/index.js';
import { cliFreshBatch, lastJson } from '../cli/helpers.js';

const MNIST = '../shared/data/mnist-t10k';

test('nested codes: width b is the top b bits of the 8-bit code, centred, and fits int8', () => {
  fc.assert(fc.property(fc.double({ min: -300, max: 300, noNaN: true }), fc.integer({ min: 2, max: 8 }), (u, b) => {
    const q8 = nestedCode(u, 0), d = 8 - b, c = nestedCode(u, d);
    assert.ok(q8 >= -128 && q8 <= 127 && Number.isInteger(q8));
    assert.ok(c >= -128 && c <= 127 && Number.isInteger(c));
    // The top b bits of q8 (arithmetic shift), the code the centre of the 2^d codes they cover.
    assert.equal(Math.floor(c / 2 ** d), q8 >> d);
    if (d > 0) assert.equal(c - (q8 >> d) * 2 ** d, 2 ** (d - 1));
    // Reading b bits of the stored code is reading b bits of the weight (one file, every width).
    assert.equal(nestedCode(q8, d), c);
    // Cascade: width b − 1 drops one more bit of width b.
    if (b > 2) assert.equal(nestedCode(u, d + 1) >> (d + 1), (nestedCode(u, d) >> d) >> 1);
  }));
});

test('a nested layer at b bits uses at most 2^b weight values per output channel; the gradient is straight-through inside the clip range', () => {
  const layer = new QuantLinear(64, 4, { kernelQuantizer: 'nested' });
  for (const b of [8, 6, 4, 3, 2]) {
    setNestedBits(layer, b);
    const w = noGrad(() => scope(() => Float32Array.from(layer.kernelQuantizer!.forward(layer.weight).values())));
    for (let o = 0; o < 4; o++) assert.ok(new Set(w.subarray(o * 64, (o + 1) * 64)).size <= 2 ** b, `width ${b}, channel ${o}`);
  }
  const g = noGrad(() => scope(() => Array.from(layer.kernelQuantizer!.pseudoGradient(layer.weight).values())));
  assert.ok(g.every((v) => v === 1), 'latent weights within 128 steps pass the gradient');
  assert.throws(() => setNestedBits(layer, 9), /nested bits must be an integer in 2\.\.8, got 9/);
});

test('once-QAT nested LeNet-5: one file, each width run by `infer --bits N` in a fresh process predicts as the in-process model at that width', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-nested-'));
  try {
    const ckpt = join(dir, 'nested.safetensors'), file = join(dir, 'nested.sgq'), w8a8 = join(dir, 'w8a8.sgq');
    const widths = [8, 6, 4, 3, 2], limit = 300;
    const commands = [
      ['train', '--model', 'lenet', '--quant', 'nested', '--data', 'mnist', '--data-dir', MNIST, '--limit', String(limit), '--epochs', '1', '--batch-size', '50', '--save', ckpt, '--json'],
      ['convert', '--checkpoint', ckpt, '--out', file, '--json'],
      ['convert', '--model', 'lenet', '--quant', 'w8a8', '--untrained', '--out', w8a8, '--json'],
      ...widths.map((b) => ['infer', file, '--bits', String(b), '--data', 'mnist', '--data-dir', MNIST, '--limit', String(limit), '--predictions', join(dir, `pred${b}.txt`), '--json']),
      ['infer', w8a8, '--bits', '4', '--data', 'mnist', '--data-dir', MNIST, '--limit', '10'],
    ];
    const r = cliFreshBatch(commands);
    // The last command must fail: --bits on a model that is not nested.
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--bits 4: .*w8a8\.sgq is not a nested-precision model/);
    const reports = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const inferred = reports.filter((j) => j.bits !== undefined);
    assert.deepEqual(inferred.map((j) => j.bits), widths);

    // In process: the trained checkpoint at each width, same test items.
    const model = applyQuantPreset('lenet', 'nested', 1);
    loadModule(model, ckpt);
    model.eval();
    const { test: testSet } = await loadSplits('mnist', { dataDir: MNIST, seed: 1, limit });
    const deployed = decodeDeployed(readFileSync(file), file);
    for (const b of widths) {
      setNestedBits(model, b);
      const expected = Array.from(predict(model, testSet).predictions);
      const got = readFileSync(join(dir, `pred${b}.txt`), 'utf8').trim().split('\n').map(Number);
      const agree = got.filter((p, i) => p === expected[i]).length;
      // Float32 rounding of the folded epilogue may flip a near-tie; nothing else may differ.
      assert.ok(agree >= limit - 1, `width ${b}: ${agree}/${limit} fresh-process predictions equal the in-process model's`);
      // The library chooses the width at load time too: withBits on the loaded file = convert at that width.
      const x = testSet.values(0, 8);
      const lib = runDeployed(withBits(deployed, b), x, [8, 1, 28, 28]).data;
      const conv = runDeployed(convert(model, [1, 28, 28]), x, [8, 1, 28, 28]).data;
      assert.deepEqual(Array.from(lib), Array.from(conv), `width ${b}: withBits(file) equals convert(model at ${b} bits)`);
      const fq = noGrad(() => scope(() => Array.from(model.call(fromValues(x, [8, 1, 28, 28])).values())));
      fq.forEach((v, i) => assert.ok(Math.abs(v - lib[i]!) <= 1e-3 * (1 + Math.abs(v)), `width ${b}: logit ${i} ${lib[i]} vs fake-quantized ${v}`));
      assert.equal(summary(model, [1, 28, 28]).layers.find((l) => l.kernel === 'nested_weights')!.readBits, b);
    }
    // Widths differ (the file really holds more than one model), and the 2-bit model is still a classifier.
    assert.notDeepEqual(readFileSync(join(dir, 'pred8.txt'), 'utf8'), readFileSync(join(dir, 'pred2.txt'), 'utf8'));
    // One file at the size of the 8-bit model: the same arrays as W8A8 LeNet-5's int8 weights.
    const w8 = decodeDeployed(readFileSync(w8a8), w8a8);
    assert.equal(payloadBytes(deployed), payloadBytes(w8));
    assert.ok(Math.abs(statSync(file).size - statSync(w8a8).size) < 64, `${statSync(file).size} vs ${statSync(w8a8).size} bytes`);
    // A model trained separately at one width deploys to exactly the same number of bytes.
    const separate = applyQuantPreset('lenet', 'nested', 2);
    setNestedBits(separate, 3);
    assert.equal(encodeDeployed(withBits(convert(separate, [1, 28, 28]), 8)).length, statSync(file).size);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a nested stage with a width outside 2..8 is refused by name', () => {
  const model = applyQuantPreset('mlp', 'nested', 0, [1, 4, 4], 3);
  const d = convert(model, [1, 4, 4]);
  assert.throws(() => withBits(d, 1), /withBits: nested bits must be an integer in 2\.\.8, got 1/);
  const bad = { ...d, stages: d.stages.map((s) => ('kernel' in s ? { ...s, bits: 12 } : s)) };
  assert.throws(() => runDeployed(decodeDeployed(encodeDeployed(bad)), new Float32Array(16), [1, 1, 4, 4]), /deployed nested_weights stage: nested bits must be an integer in 2\.\.8, got 12/);
  assert.throws(() => withBits(convert(applyQuantPreset('mlp', 'w8a8', 0, [1, 4, 4], 3), [1, 4, 4]), 4), /no nested-precision layers/);
});
