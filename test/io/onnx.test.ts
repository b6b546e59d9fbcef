// ONNX import/export: the PyTorch-exported fixture, float round trips, onnxruntime-node as the
// independent runtime for float and QDQ exports, and errors for unsupported graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import type { Module } from '../../src/nn/module.js';
import { BatchNorm, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers.js';
import { BasicBlock, lenet5, resnet20 } from '../../src/nn/models.js';
import { importOnnx } from '../../src/io/onnx/import.js';
import { exportOnnx } from '../../src/io/onnx/export.js';
import { GraphModule } from '../../src/io/onnx/graph.js';
import { encodeModel } from '../../src/io/onnx/schema.js';
import { deployPtq, ptq, quantizableLayers } from '../../src/quant/ptq/ptq.js';
import { runDeployed } from '../../src/quant/runtime.js';
import { deployedInputCodes, maxCodeDiff } from '../../src/quant/ptq/validate.js';
import { Rng } from '../../src/util/rng.js';

useFastestBackend();
const FIXTURE = new URL('../fixtures/onnx/', import.meta.url);
const torchBytes = readFileSync(new URL('torch_cnn.onnx', FIXTURE));
const ref = JSON.parse(readFileSync(new URL('torch_cnn.ref.json', FIXTURE), 'utf8')) as { inputShape: number[]; input: number[]; logits: number[] };

const run = (m: Module, x: Float32Array, shape: number[]): Float32Array => noGrad(() => scope(() => m.call(fromValues(x, shape)).values() as Float32Array));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
async function ortRun(bytes: Uint8Array, x: Float32Array, shape: number[]): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  return session.run({ input: new ort.Tensor('float32', Float32Array.from(x), shape) });
}
const images = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 784 }, () => rng.uniform());
};

test('the PyTorch-exported CNN imports as a Sequential and matches PyTorch within 1e-5', () => {
  const { model, inputShape } = importOnnx(torchBytes, 'torch_cnn.onnx');
  assert.ok(model instanceof Sequential);
  assert.deepEqual(inputShape, [1, 28, 28]);
  const y = run(model, Float32Array.from(ref.input), ref.inputShape);
  assert.ok(maxDiff(y, ref.logits) <= 1e-5, `max |slimgrad − PyTorch| = ${maxDiff(y, ref.logits)}`);
});

test('float export runs in onnxruntime-node and re-imports exactly (LeNet-5, imported CNN, ResNet-20 DAG)', async () => {
  const models: [string, Module][] = [['lenet5', lenet5(10, 3).eval()], ['torch', importOnnx(torchBytes).model], ['resnet20', resnet20(10, 2, 1).eval()]];
  const x = images(3, 1), shape = [3, 1, 28, 28];
  for (const [name, m] of models) {
    const y = run(m, x, shape);
    const bytes = exportOnnx(m, [1, 28, 28]);
    const back = importOnnx(bytes, name);
    if (name === 'resnet20') assert.ok(back.model instanceof GraphModule, 'residual graph imports as a GraphModule');
    assert.ok(maxDiff(run(back.model, x, shape), y) <= 1e-6, `${name}: round trip differs by ${maxDiff(run(back.model, x, shape), y)}`);
    const o = await ortRun(bytes, x, shape);
    assert.ok(maxDiff(o.output!.data as Float32Array, y) <= 1e-4, `${name}: onnxruntime differs by ${maxDiff(o.output!.data as Float32Array, y)}`);
  }
});

test('unsupported ops are one error naming each op and node', () => {
  const bytes = encodeModel({
    ir_version: 7, opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: [
        { op_type: 'Relu', name: 'ok', input: ['x'], output: ['a'] },
        { op_type: 'LSTM', name: 'rnn_1', input: ['a'], output: ['b'] },
        { op_type: 'Gather', name: 'pick', input: ['b'], output: ['y'] },
      ],
      input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 4 }] } } } }],
      output: [{ name: 'y' }],
    },
  });
  assert.throws(() => importOnnx(bytes, 'bad.onnx'), /bad\.onnx: unsupported ONNX ops: LSTM \(node 'rnn_1'\), Gather \(node 'pick'\)/);
  assert.throws(() => importOnnx(new Uint8Array([1, 2, 3, 255]), 'junk.onnx'), /junk\.onnx/);
});

test('QDQ export of the imported PyTorch CNN in onnxruntime-node gives the deployed int8 model\'s codes (W8A8 RTN, W4A4 AQuant borders)', async () => {
  const { model, inputShape } = importOnnx(torchBytes);
  const calib = images(32, 7), x = Float32Array.from(ref.input), shape = ref.inputShape;
  for (const o of [{ method: 'rtn', wBits: 8, aBits: 8 }, { method: 'aquant', wBits: 4, aBits: 4, iters: 30 }] as const) {
    const r = ptq(model, calib, [32, 1, 28, 28], { ...o, actObserver: 'minmax' });
    const deployed = deployPtq(model, r, inputShape);
    const out = await ortRun(exportOnnx(model, inputShape, { ptq: r, exposeCodes: true }), x, shape);
    const codes = deployedInputCodes(deployed, x, shape);
    const names = Object.keys(out).filter((k) => k !== 'output');
    assert.equal(names.length, 4);
    names.forEach((k, i) => assert.equal(maxCodeDiff(out[k]!.data as Int8Array, codes[i]!), 0, `${o.method}: layer ${i} codes differ`));
    if (o.method === 'rtn') {
      const y = runDeployed(deployed, x, shape).data;
      assert.deepEqual(Array.from(out.output!.data as Float32Array), Array.from(y), 'logits differ');
    }
  }
});

/** A small residual CNN (stem conv + BatchNorm across a max-pool, an identity and a downsampling block, global pool) with BatchNorm statistics away from the defaults. */
function smallResidual(seed: number): Sequential {
  const rng = new Rng(seed, 3);
  const m = new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, bias: false, rng }), MaxPool2d({ kernel: 2 }), new BatchNorm(8), ReLU(),
    new BasicBlock(8, 8, 1, rng), new BasicBlock(8, 16, 2, rng), GlobalAvgPool2d(), new Linear(16, 10, { rng }),
  );
  for (const [, l] of m.namedModules()) {
    if (!(l instanceof BatchNorm)) continue;
    const c = l.channels;
    l.gamma.data().set(Float32Array.from({ length: c }, () => 0.5 + rng.uniform()));
    l.beta.data().set(Float32Array.from({ length: c }, () => rng.normal() * 0.3));
    l.runningMean.data().set(Float32Array.from({ length: c }, () => rng.normal() * 0.2));
    l.runningVar.data().set(Float32Array.from({ length: c }, () => 0.5 + rng.uniform() * 2));
  }
  return m.eval() as Sequential;
}

test('QDQ export of a residual CNN in onnxruntime-node computes the deployed int8 model (BatchNorm folded, residual adds, rounding ties, AQuant borders): identical codes and logits', async () => {
  const model = smallResidual(5), inputShape = [1, 28, 28];
  const calib = images(32, 9), x = images(16, 11), shape = [16, 1, 28, 28];
  // Every third pixel an exact rounding tie of the first layer's grid (step 2^-5 below):
  // half away from zero in the runtime, where QuantizeLinear would round half to even.
  for (let i = 0; i < x.length; i += 3) x[i] = (Math.floor(x[i]! * 30) + 0.5) / 32;
  for (const o of [{ method: 'rtn', wBits: 8, aBits: 8 }, { method: 'rtn', wBits: 4, aBits: 4 }, { method: 'aquant', wBits: 4, aBits: 4, iters: 4, batch: 8 }] as const) {
    const r = ptq(model, calib, [32, 1, 28, 28], o), tag = `${o.method} W${o.wBits}A${o.aBits}`;
    if (o.method === 'rtn') r.layers[0]!.act.step = 1 / 32;
    else {
      // Both border layouts, whatever the learning kept: a table per channel and level (Gather in
      // ONNX) on even layers, one border per channel on odd ones.
      const rng = new Rng(13, 1);
      quantizableLayers(model).forEach((l, i) => {
        const a = r.layers[i]!.act, c = l.weight.shape[1]!;
        a.border = Float32Array.from({ length: i % 2 ? c : c * (a.hi - a.lo) }, () => 0.1 + 0.8 * rng.uniform());
      });
    }
    const deployed = deployPtq(model, r, inputShape);
    const out = await ortRun(exportOnnx(model, inputShape, { ptq: r, exposeCodes: true }), x, shape);
    const codes = deployedInputCodes(deployed, x, shape);
    const names = Object.keys(out).filter((k) => k !== 'output');
    assert.equal(names.length, codes.length);
    names.forEach((k, i) => assert.equal(maxCodeDiff(out[k]!.data as Int8Array, codes[i]!), 0, `${tag}: int8 stage ${i} codes differ`));
    assert.deepEqual(Array.from(out.output!.data as Float32Array), Array.from(runDeployed(deployed, x, shape).data), `${tag}: logits differ`);
  }
});
