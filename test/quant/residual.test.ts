// Residual networks in the deployed format: ResNet-20 (float and PTQ int8) converts to residual
// stages that reproduce the model, in this process and through the CLI in a fresh one; files whose
// stages do not fit their layer shapes are refused naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { loadSplits } from '../../src/data/splits.js';
import { saveModule } from '../../src/io/checkpoint.js';
import { decodeDeployed, encodeDeployed } from '../../src/io/deployed-format.js';
import { BatchNorm } from '../../src/nn/layers.js';
import { resnet20 } from '../../src/nn/models.js';
import type { Sequential } from '../../src/nn/layers.js';
import { convert } from '../../src/quant/convert.js';
import { applyQuantPreset } from '../../src/quant/models.js';
import { checkDeployed } from '../../src/quant/check.js';
import { runPacked } from '../../src/quant/packed.js';
import { deployPtq, ptq, quantizableLayers, simulate } from '../../src/quant/ptq/ptq.js';
import { quantizeActivation } from '../../src/quant/ptq/activation.js';
import { deployedInputCodes } from '../../src/quant/ptq/validate.js';
import { matStages, runDeployed, type DeployedModel } from '../../src/quant/runtime.js';
import { Rng } from '../../src/util/rng.js';
import { cliFreshBatch } from '../cli/helpers.js';

useFastestBackend();
const SHAPE = [1, 28, 28];

/** BatchNorm statistics away from the defaults, some negative scales. */
function randomizeBatchNorms(m: Sequential, rng: Rng): void {
  for (const [, l] of m.namedModules()) {
    if (!(l instanceof BatchNorm)) continue;
    const c = l.channels;
    l.gamma.data().set(Float32Array.from({ length: c }, (_, i) => (i % 7 === 0 ? -1 : 1) * (0.5 + rng.uniform())));
    l.beta.data().set(Float32Array.from({ length: c }, () => rng.normal() * 0.3));
    l.runningMean.data().set(Float32Array.from({ length: c }, () => rng.normal() * 0.2));
    l.runningVar.data().set(Float32Array.from({ length: c }, () => 0.5 + rng.uniform() * 2));
  }
}

/** ResNet-20 on MNIST-shaped items with trained-like BatchNorm statistics. */
function trainedLike(seed: number): Sequential {
  const m = resnet20(10, seed, 1);
  randomizeBatchNorms(m, new Rng(seed, 7));
  return m.eval() as Sequential;
}

const forward = (m: Sequential, x: Float32Array, n: number, shape = SHAPE) => noGrad(() => scope(() => Float32Array.from(m.call(fromValues(x, [n, ...shape])).values())));
const argmaxes = (v: Float32Array) => Array.from({ length: v.length / 10 }, (_, r) => {
  const row = v.subarray(r * 10, r * 10 + 10);
  return row.indexOf(Math.max(...row));
});
const maxRel = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!) / (1 + Math.abs(b[i]!))), 0);

test('ResNet-20 deploys as residual stages (downsampling shortcuts included): TS and packed runtimes reproduce the model after an .sgq round trip', () => {
  const m = trainedLike(1), n = 6, rng = new Rng(2, 1);
  const x = Float32Array.from({ length: n * 784 }, () => rng.uniform());
  const deployed = decodeDeployed(encodeDeployed(convert(m, SHAPE)), 'resnet20.sgq');
  const residuals = deployed.stages.filter((s) => s.op === 'residual');
  assert.equal(residuals.length, 9);
  assert.equal(residuals.filter((s) => s.op === 'residual' && s.shortcut.length > 0).length, 2, 'two downsampling shortcuts (1x1 stride-2 conv, BatchNorm folded)');
  assert.equal(matStages(deployed.stages).length, 22);
  assert.deepEqual(checkDeployed(deployed), [10]);
  const expected = forward(m, x, n);
  for (const run of [runDeployed, runPacked]) {
    const got = run(deployed, x, [n, ...SHAPE]);
    assert.deepEqual(got.shape, [n, 10]);
    assert.ok(maxRel(got.data, expected) < 1e-4, `${run.name}: ${maxRel(got.data, expected)}`);
  }
  m.dispose();
});

test('PTQ W8A8 ResNet-20 deploys on the int8 kernels and agrees with its simulation', () => {
  // 12x12 items keep the test fast (ResNet-20 takes any size).
  const S = [1, 12, 12], m = trainedLike(3), n = 8, rng = new Rng(4, 1);
  const x = Float32Array.from({ length: n * 144 }, () => rng.uniform());
  const r = ptq(m, x, [n, ...S], { method: 'rtn', wBits: 8, aBits: 8, weightObserver: 'minmax', actObserver: 'minmax' });
  // The simulation's input codes of every layer, captured in front of its fake-quantized forward.
  const restore = simulate(m, r), simCodes: Int8Array[] = [];
  quantizableLayers(m).forEach((l, i) => {
    const f = l.forward;
    l.forward = (t) => (simCodes.push(quantizeActivation(t.values() as Float32Array, t.shape, r.layers[i]!.act)), f(t));
  });
  const sim = forward(m, x, n, S);
  restore();
  const deployed = decodeDeployed(encodeDeployed(deployPtq(m, r, S)));
  assert.ok(matStages(deployed.stages).every((s) => s.kernel === 'int8'));
  const codes = deployedInputCodes(deployed, x, [n, ...S]);
  assert.equal(codes.length, 22);
  const ts = runDeployed(deployed, x, [n, ...S]).data, packed = runPacked(deployed, x, [n, ...S]).data;
  assert.deepEqual(Array.from(packed), Array.from(ts), 'the packed runtime runs the same int8 stages');
  // Folding BatchNorm into the epilogue moves values by float rounding, which can flip a code at a
  // rounding tie, and 20 layers of random weights amplify such flips (measured: first flip at layer
  // 3, a few LSB by layer 21). The first layer's codes are identical, almost all others are.
  assert.deepEqual(Array.from(codes[0]!), Array.from(simCodes[0]!));
  let same = 0, total = 0;
  codes.forEach((c, i) => c.forEach((v, j) => { total++; if (v === simCodes[i]![j]) same++; }));
  assert.ok(same / total > 0.97, `${same}/${total} activation codes agree`);
  const agree = argmaxes(ts).filter((a, i) => a === argmaxes(sim)[i]).length;
  assert.ok(agree >= n - 1, `${agree}/${n} predictions agree`);
  m.dispose();
});

/** The encoded model with its JSON header edited (checksum recomputed), as a hostile writer would. */
function rewritten(model: DeployedModel, edit: (h: any) => void): Uint8Array {
  const bytes = encodeDeployed(model), dv = new DataView(bytes.buffer);
  const len = dv.getUint32(8, true), head = 12 + ((len + 3) & ~3);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + len)));
  edit(h);
  const json = new TextEncoder().encode(JSON.stringify(h)), jhead = 12 + ((json.length + 3) & ~3);
  const out = new Uint8Array(jhead + bytes.length - head);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(bytes.subarray(head, bytes.length - 4), jhead);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

test('stages that do not fit the layer shapes are refused naming the file and the field', () => {
  const m = trainedLike(5), model = convert(m, SHAPE);
  m.dispose();
  assert.ok(decodeDeployed(rewritten(model, () => {}), 'same.sgq'), 'an unedited header loads');
  const cases: [string, (h: any) => void, RegExp][] = [
    ['downsampling shortcut without its stride', (h) => (h.stages[8].shortcut[0].stride = 1), /stages\[8\]: the body gives \[32,14,14\] but the shortcut \[32,28,28\]/],
    ['body conv with the wrong input channels', (h) => (h.stages[2].body[0].inC = 8), /stages\[2\]\.body\[0\]\.inC: 8 input channels, but the stage receives \[16,28,28\]/],
    ['weights length for another shape', (h) => (h.stages[0].outC = 32), /stages\[0\]\.weights: expected \d+ values/],
    ['padding beyond the kernel', (h) => (h.stages[0].pad = 7), /stages\[0\]\.pad: expected an integer in \[0, 2\]/],
    ['unknown op', (h) => (h.stages[1].op = 'softmax'), /stages\[1\]\.op: unknown stage "softmax"/],
    ['residual without a body', (h) => (h.stages[2].body = 'x'), /stages\[2\]\.body: expected a list of stages/],
    ['blocks nested too deep', (h) => {
      let s = { op: 'residual', body: [{ op: 'relu' }], shortcut: [] as unknown[] };
      for (let i = 0; i < 8; i++) s = { op: 'residual', body: [s], shortcut: [] };
      h.stages.splice(1, 0, s);
    }, /nested deeper than 4/],
    ['dense fed an image', (h) => h.stages.splice(h.stages.length - 2, 1), /dense stage of 64 inputs receives \[64,7,7\]/],
  ];
  for (const [what, edit, message] of cases) {
    assert.throws(() => decodeDeployed(rewritten(model, edit), 'bad.sgq'), (e: Error) => e.message.startsWith('bad.sgq: ') && message.test(e.message), what);
  }
  assert.throws(() => encodeDeployed({ ...model, inputShape: [3, 28, 28] }), /stages\[0\]\.inC: 1 input channels, but the stage receives \[3,28,28\]/);
});

test('slimgrad convert/quantize + infer on a ResNet-20 checkpoint: predictions in a fresh process equal the in-process model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-resnet-'));
  try {
    const { train, test: testSet } = await loadSplits('synthetic', { seed: 1 });
    const m = trainedLike(7);
    const ckpt = join(dir, 'resnet20.safetensors');
    saveModule(m, ckpt, { model: 'resnet20', itemShape: JSON.stringify(SHAPE), classes: '10' });
    const limit = 8, items = testSet.subset(0, limit);
    const r = cliFreshBatch([
      ['convert', '--checkpoint', ckpt, '--out', join(dir, 'float.sgq'), '--json'],
      ['infer', join(dir, 'float.sgq'), '--data', 'synthetic', '--seed', '1', '--limit', String(limit), '--predictions', join(dir, 'float.txt'), '--json'],
      ['quantize', ckpt, '--data', 'synthetic', '--seed', '1', '--calib-items', '8', '--eval-items', '0', '--observer', 'minmax', '--weight-observer', 'minmax', '--out', join(dir, 'int8.sgq'), '--json'],
      ['infer', join(dir, 'int8.sgq'), '--data', 'synthetic', '--seed', '1', '--limit', String(limit), '--predictions', join(dir, 'int8.txt'), '--json'],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const read = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map(Number);
    const x = items.values();
    assert.deepEqual(read('float.txt'), argmaxes(forward(m, x, limit)));
    const q = ptq(m, train.values(0, 8), [8, ...SHAPE], { method: 'rtn', wBits: 8, aBits: 8, weightObserver: 'minmax', actObserver: 'minmax', seed: 1 });
    assert.deepEqual(read('int8.txt'), argmaxes(runPacked(deployPtq(m, q, SHAPE), x, [limit, ...SHAPE]).data));
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('binary ResNet-20 (float stem, shortcuts and classifier; 1-bit block convs) deploys with packed activations inside its blocks', () => {
  for (const preset of ['binary', 'irnet', 'dirnet']) {
    const m = applyQuantPreset('resnet20', preset, 2, SHAPE, 10);
    randomizeBatchNorms(m, new Rng(11, 7));
    m.eval();
    const n = 6, rng = new Rng(12, 1), x = Float32Array.from({ length: n * 784 }, () => rng.uniform());
    const expected = forward(m, x, n);
    const deployed = decodeDeployed(encodeDeployed(convert(m, SHAPE)));
    const mats = matStages(deployed.stages);
    assert.equal(mats.filter((s) => s.kernel === 'binary').length, 18, `${preset}: 18 binary convs`);
    assert.equal(mats.filter((s) => s.kernel === 'binary' && s.threshold).length, 9, `${preset}: each block's first conv ends in sign thresholds`);
    assert.ok(!deployed.stages.some((s) => s.op === 'relu'), 'no ReLU after the sums');
    for (const run of [runDeployed, runPacked]) {
      const got = run(deployed, x, [n, ...SHAPE]).data;
      assert.ok(maxRel(got, expected) < 1e-3, `${preset} ${run.name}: ${maxRel(got, expected)}`);
    }
    m.dispose();
  }
});
