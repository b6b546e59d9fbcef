// SBNN's {α, β} layers in both deploy runtimes: the packed wasm runtime (runPacked, wasm and
// reference kernels) and the TypeScript runtime (runDeployed) against the float training model,
// on a model with zero-padded and strided binary convs and a binary dense layer, the Larq BNN
// (a binary_weights first layer with levels, max-pools) and a binary ResNet-20 (padded convs whose
// epilogue adds the shortcut), each through a file round trip (format version 4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { loadQuantWasm } from './wasm-setup.js';
import {
  applyQuantPreset, convert, decodeDeployed, encodeDeployed, isQuantLayer, QuantConv2d, QuantLinear, runDeployed, runPacked, setQuantProgress, SparseBinaryWeight, useQuantKernels,
  type DeployedModel, type QuantWasmKernels,
} from '../../src/quant/index.js';
import { BatchNorm, Conv2d, Flatten, Linear, Sequential } from '../../src/nn/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';

let wasm: QuantWasmKernels;
const rng = new Rng(41, 3);

before(async () => {
  wasm = await loadQuantWasm();
});
after(() => useQuantKernels(null));

const sbnn = (sparsity: number) => ({ inputQuantizer: 'ede_sign', kernelQuantizer: { name: 'sbnn_weight', sparsity }, kernelConstraint: 'weight_clip' }) as const;

/** Float stem, two padded SBNN convs (the second strided), a binary dense layer, a float classifier: input [1, 9, 9]. */
function paddedModel(seed: number): Sequential {
  const r = new Rng(seed, 5);
  return new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, bias: false, rng: r }), new BatchNorm(8),
    new QuantConv2d(8, 40, 3, { ...sbnn(0.9), padding: 1, bias: false, rng: r }), new BatchNorm(40),
    new QuantConv2d(40, 16, 3, { ...sbnn(0.75), padding: 2, stride: 2, bias: false, rng: r }), new BatchNorm(16),
    Flatten(),
    new QuantLinear(16 * 6 * 6, 24, { ...sbnn(0.9), bias: false, rng: r }), new BatchNorm(24),
    new Linear(24, 10, { rng: r }),
  );
}

/** Running statistics from the data (so signs split), then τ, φ moved off their fit (negative α and β included) and BN gammas/betas perturbed. */
function prepare(model: Sequential, x: Float32Array, shape: number[]): void {
  setQuantProgress(model, 1); // trained: codes at their final sparsity, τ and φ as set below
  model.train();
  for (let i = 0; i < 40; i++) noGrad(() => scope(() => void model.call(fromValues(x, shape))));
  model.eval();
  let i = 0;
  for (const [, m] of model.namedModules()) {
    if (isQuantLayer(m) && m.kernelQuantizer instanceof SparseBinaryWeight) {
      const q = m.kernelQuantizer, tau = q.tau.item(), phi = q.phi.item();
      q.tau.data().set([tau * (i % 3 === 2 ? -1 : 1) * (0.8 + 0.4 * rng.uniform())]);
      q.phi.data().set([phi + tau * (rng.uniform() - 0.5)]);
      q.tau.bumpVersion();
      q.phi.bumpVersion();
      i++;
    }
    if (m instanceof BatchNorm) {
      m.gamma.data().set(Float32Array.from(m.gamma.values(), (g) => g * (rng.uniform() < 0.1 ? -1 : 1) * (0.5 + rng.uniform())));
      m.beta.data().set(Float32Array.from(m.beta.values(), (b) => b + 0.2 * rng.normal()));
    }
  }
  assert.ok(i > 0);
}

const close = (name: string, got: Float32Array, want: Float32Array, tol: number) => {
  const scale = Math.max(1, ...Array.from(want, Math.abs));
  assert.equal(got.length, want.length, name);
  want.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) <= tol * scale, `${name}[${i}]: ${got[i]} vs ${v}`));
};
const argmax = (v: Float32Array, classes: number) => Array.from({ length: v.length / classes }, (_, b) => {
  const row = Array.from(v.subarray(b * classes, (b + 1) * classes));
  return row.indexOf(Math.max(...row));
});

function noWasm<T>(f: () => T): T {
  useQuantKernels(null);
  try {
    return f();
  } finally {
    useQuantKernels(wasm.exports);
  }
}

test('SBNN {α, β} layers: packed runtime (wasm and reference) = TypeScript runtime = float model, padded/strided convs, dense, max-pools, residual blocks', () => {
  const cases: [string, Sequential, number[]][] = [
    ['padded convs + dense', paddedModel(1), [1, 9, 9]],
    ['bnn-sbnn:0.9 (Larq BNN)', applyQuantPreset('lenet', 'bnn-sbnn:0.9', 2), [1, 28, 28]],
    ['sbnn:0.9 ResNet-20', applyQuantPreset('resnet20', 'sbnn:0.9', 3, [3, 8, 8]), [3, 8, 8]],
  ];
  for (const [name, model, item] of cases) {
    const n = 4, shape = [n, ...item], size = item.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n * size }, () => rng.normal());
    prepare(model, x, shape);
    const want = noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x, shape)).values())));
    const deployed = convert(model, item);
    const stages = JSON.stringify(deployed.stages, (k, v) => (ArrayBuffer.isView(v) ? undefined : v));
    assert.match(stages, /"levels":\[/, `${name}: binary stages carry their levels`);
    const bytes = encodeDeployed(deployed);
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true), 4, `${name}: format version 4`);
    const back = decodeDeployed(bytes, name);
    const ts = runDeployed(back, x, shape).data;
    close(`${name}: runDeployed vs float model`, ts, want, 1e-3);
    const classes = want.length / n;
    assert.deepEqual(argmax(ts, classes), argmax(want, classes), `${name}: predictions`);
    for (const [kind, got] of [['wasm', runPacked(back, x, shape).data], ['reference', noWasm(() => runPacked(back, x, shape).data)]] as const) {
      close(`${name}: runPacked (${kind}) vs runDeployed`, got, ts, 1e-4);
    }
    // The levels matter here: the same codes as ±1 weights give other outputs.
    const withoutLevels = { ...back, stages: stripLevels(back.stages) };
    const off = runDeployed(withoutLevels as DeployedModel, x, shape).data;
    assert.ok(off.some((v, i) => Math.abs(v - want[i]!) > 1e-2 * (1 + Math.abs(want[i]!))), `${name}: a runtime ignoring the levels would pass`);
    model.dispose();
  }
});

/** The stages with `levels` removed (and float thresholds rounded to integers, as a ±1 binary stage keeps them). */
function stripLevels(stages: readonly unknown[]): unknown[] {
  return stages.map((raw) => {
    const s = { ...(raw as Record<string, unknown>) };
    if ('body' in s) return { ...s, body: stripLevels(s.body as unknown[]), shortcut: stripLevels(s.shortcut as unknown[]) };
    if (s.levels) {
      delete s.levels;
      if (s.threshold && s.kernel === 'binary') s.threshold = Int32Array.from(s.threshold as Float32Array, Math.ceil);
    }
    return s;
  });
}
