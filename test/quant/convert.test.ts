// Layers, models, summary and conversion: the deployed (packed) model reproduces the fake-quantized
// float model, the file round-trips, and its size matches summary().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromValues } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { noGrad } from '../../src/autograd/mode.js';
import { BatchNorm, Conv2d, Linear, MaxPool2d, Sequential, lenet5, mlp } from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';
import { randomizeBatchNorms as randomizeBN } from '../helpers.js';
import {
  applyQuantPreset, binaryNetMlp, bwnLenet5, constrainWeights, convert, decodeDeployed, encodeDeployed, larqMnistBnn,
  payloadBytes, QuantConv2d, QuantLinear, runDeployed, setQuantWarningHandler, summary, twnLenet5, w8a8Lenet5, xnorNet,
} from '../../src/quant/index.js';

const rng = new Rng(9, 1);

/** Realistic trained-like state: BN statistics away from the defaults, some negative gammas. */
const randomizeBatchNorms = (model: Sequential, negativeGamma: boolean) => randomizeBN(model, rng, negativeGamma);

function images(n: number): Float32Array {
  return Float32Array.from({ length: n * 784 }, () => (rng.uniform() < 0.6 ? 0 : rng.uniform()));
}

function floatForward(model: Sequential, x: Float32Array, n: number): Float32Array {
  model.eval();
  return noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x, [n, 1, 28, 28])).values())));
}

const argmaxes = (v: Float32Array, classes: number) =>
  Array.from({ length: v.length / classes }, (_, r) => {
    const row = v.subarray(r * classes, (r + 1) * classes);
    return row.indexOf(Math.max(...row));
  });

function checkDeployed(name: string, model: Sequential, opts: { negativeGamma?: boolean; exactFraction: number; tol: number }) {
  randomizeBatchNorms(model, opts.negativeGamma ?? false);
  const n = 16;
  const x = images(n);
  const expected = floatForward(model, x, n);
  const deployed = convert(model, [1, 28, 28]);
  const bytes = encodeDeployed(deployed);
  const got = runDeployed(decodeDeployed(bytes, name), x, [n, 1, 28, 28]);
  assert.deepEqual(got.shape, [n, 10]);
  let close = 0;
  expected.forEach((e, i) => {
    if (Math.abs(e - got.data[i]!) <= opts.tol * (1 + Math.abs(e))) close++;
  });
  assert.ok(close / expected.length >= opts.exactFraction, `${name}: ${close}/${expected.length} outputs match the float model`);
  const agree = argmaxes(expected, 10).filter((a, i) => a === argmaxes(got.data, 10)[i]).length;
  assert.ok(agree >= n - 1, `${name}: ${agree}/${n} predictions agree`);
  return { deployed, bytes };
}

test('QuantLinear/QuantConv2d without quantizers are bit-identical to Linear/Conv2d', () => {
  scope(() => {
    const x = fromValues(Float32Array.from({ length: 2 * 3 * 8 * 8 }, () => rng.normal()), [2, 3, 8, 8]);
    const a = new Conv2d(3, 4, 3, { padding: 1, rng: new Rng(1) }), b = new QuantConv2d(3, 4, 3, { padding: 1, rng: new Rng(1) });
    assert.deepEqual(Array.from(b.call(x).values()), Array.from(a.call(x).values()));
    const v = fromValues(Float32Array.from({ length: 2 * 20 }, () => rng.normal()), [2, 20]);
    const c = new Linear(20, 7, { rng: new Rng(2) }), d = new QuantLinear(20, 7, { rng: new Rng(2) });
    assert.deepEqual(Array.from(d.call(v).values()), Array.from(c.call(v).values()));
  });
});

test('a binary kernel without a constraint warns; weight_clip clips latent weights', () => {
  const warnings: string[] = [];
  const prev = setQuantWarningHandler((m) => warnings.push(m));
  try {
    new QuantLinear(4, 2, { kernelQuantizer: 'ste_sign' });
    assert.match(warnings[0] ?? '', /QuantLinear\(4 -> 2\): binary kernel quantizer 'ste_sign' without a kernelConstraint/);
    new QuantLinear(4, 2, { kernelQuantizer: 'ste_sign', kernelConstraint: 'weight_clip' });
    assert.equal(warnings.length, 1);
  } finally {
    setQuantWarningHandler(prev);
  }
  const model = new Sequential(new QuantLinear(4, 3, { kernelQuantizer: 'ste_sign', kernelConstraint: { name: 'weight_clip', clipValue: 0.5 } }));
  const layer = model.layers[0] as QuantLinear;
  layer.weight.data().set([2, -3, 0.1, 0.4, -0.6, 9, 0, 0, 0, 0, 0, 0]);
  constrainWeights(model);
  assert.deepEqual(Array.from(layer.weight.values()).slice(0, 6), [0.5, -0.5, 0.10000000149011612, 0.4000000059604645, -0.5, 0.5]);
  assert.throws(() => new QuantLinear(2, 2, { kernelConstraint: 'max_norm' }), /unknown kernel constraint 'max_norm'/);
});

test('presets build the documented models, and float twins share latent initial weights', () => {
  assert.deepEqual(Array.from((applyQuantPreset('lenet5', 'twn', 3).layers[0] as QuantConv2d).weight.values()), Array.from((lenet5(10, 3).layers[0] as Conv2d).weight.values()));
  assert.equal((applyQuantPreset('mlp', 'w8a8', 1).layers[1] as QuantLinear).weight.values()[5], (mlp([784, 512, 512, 10], 1).layers[1] as Linear).weight.values()[5]);
  assert.throws(() => applyQuantPreset('mlp', 'xnor'), /unknown preset 'xnor' for model 'mlp'/);
  assert.throws(() => applyQuantPreset('resnet20', 'bnn'), /unknown preset 'bnn' for model 'resnet20' \(available: ttq, pternary, hq, binary, irnet, fda, dirnet, sbnn\)/);
  assert.throws(() => applyQuantPreset('vgg-small', 'twn'), /no quantized presets for model 'vgg-small'/);
});

test('summary of the Larq MNIST BNN matches Larq: 93,088 binary weights, 13.19 KiB vs 365.45 KiB, 93 % binary MACs', () => {
  const s = summary(larqMnistBnn(0), [1, 28, 28]);
  assert.equal(s.paramsByBits[1], 93088);
  assert.equal(s.memoryKiB.toFixed(2), '13.19');
  assert.equal(s.floatKiB.toFixed(2), '365.45');
  assert.equal(Math.round(100 * s.binaryMacFraction), 93);
  assert.deepEqual(s.packedLayers, ['3', '6', '9', '11']);
  assert.deepEqual(s.fallbackLayers, ['0']);
});

test('BNN (Larq MNIST): deployed integer model reproduces the float ±1 model; file size = summary within 5 %', () => {
  const model = larqMnistBnn(1);
  const { deployed, bytes } = checkDeployed('larq bnn', model, { negativeGamma: true, exactFraction: 0.99, tol: 1e-4 });
  const predicted = summary(model, [1, 28, 28]).memoryBits / 8;
  const payload = payloadBytes(deployed);
  assert.ok(Math.abs(payload - predicted) / predicted <= 0.05, `payload ${payload} B vs summary ${predicted} B`);
  assert.ok(payload <= 16 * 1024, `payload ${payload} B exceeds 16 KiB`);
  assert.ok(bytes.length - payload < 4096, `header ${bytes.length - payload} B`);
  // BN + sign fold to integer thresholds; a BN behind a max-pool folds only where its scale is
  // positive (here some gammas are negative, so that one stays a float affine stage).
  const intThresholds = (d: typeof deployed) => d.stages.filter((s) => 'threshold' in s && s.threshold instanceof Int32Array).length;
  assert.equal(intThresholds(deployed), 2);
  assert.ok(deployed.stages.some((s) => s.op === 'affine'));
  const positive = larqMnistBnn(1);
  randomizeBatchNorms(positive, false);
  assert.equal(intThresholds(convert(positive, [1, 28, 28])), 3);
});

test('XNOR-Net (zero-padded binary convs, alpha per filter) converts faithfully', () => {
  checkDeployed('xnor', xnorNet(2), { exactFraction: 0.99, tol: 1e-4 });
});

test('float LeNet-5 (nn MaxPool2d layers) converts to float stages faithfully; a strided or padded pool is refused', () => {
  checkDeployed('lenet', lenet5(10, 3), { exactFraction: 0.99, tol: 1e-4 });
  const odd = new Sequential(new Conv2d(1, 2, 3, { rng: new Rng(1, 0) }), MaxPool2d({ kernel: 2, stride: 1 }));
  assert.throws(() => convert(odd, [1, 28, 28]), /convert: layer 1 \(maxpool2d\) is not supported .*MaxPool2d with stride = window and no padding/);
});

test('BinaryNet MLP converts faithfully', () => {
  const model = binaryNetMlp([784, 96, 64, 10], 4);
  checkDeployed('binarynet', model, { negativeGamma: true, exactFraction: 0.99, tol: 1e-4 });
});

test('BWN and TWN LeNet-5: 1- and 2-bit weights with per-channel alpha', () => {
  for (const [name, model, bits] of [['bwn', bwnLenet5(5), 1], ['twn', twnLenet5(5), 2]] as const) {
    const { deployed } = checkDeployed(name, model, { exactFraction: 1, tol: 1e-4 });
    const predicted = summary(model, [1, 28, 28]).memoryBits / 8;
    const payload = payloadBytes(deployed);
    assert.ok(Math.abs(payload - predicted) / predicted <= 0.05, `${name}: payload ${payload} B vs summary ${predicted} B (${bits}-bit)`);
  }
});

test('W8A8 LeNet-5: int8 GEMM output within 1 LSB of the fake-quantized float model', () => {
  const model = w8a8Lenet5(6);
  // Calibrate the LSQ steps on a batch (first forward initialises them).
  floatForward(model, images(8), 8);
  const { deployed } = checkDeployed('w8a8', model, { exactFraction: 0.97, tol: 1e-3 });
  assert.ok(deployed.stages.some((s) => 'kernel' in s && s.kernel === 'int8'));
});

test('decodeDeployed names the file on corrupt input', () => {
  assert.throws(() => decodeDeployed(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 'bad.sgq'), /bad\.sgq: not a slimgrad quantized model/);
  const bytes = encodeDeployed(convert(bwnLenet5(0), [1, 28, 28]));
  assert.throws(() => decodeDeployed(bytes.subarray(0, bytes.length - 100), 'cut.sgq'), /cut\.sgq: checksum: .* corrupt or truncated/);
});
