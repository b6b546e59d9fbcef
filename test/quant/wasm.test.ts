// The wasm kernels (kernels/quant) against the reference kernels: identical integers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Rng } from '../../src/util/rng.js';
import {
  binaryGemm, convert, floatGemm, int8Gemm, larqMnistBnn, loadQuantKernels, QuantWasmKernels,
  packSignRows, quantWasmFile, runDeployed, useQuantKernels, w8a8Lenet5, xnorNet, type QuantWasmExports,
} from '../../src/quant/index.js';
import { getBackend, kernels, useFastestBackend } from '../../src/backends/index.js';
import { referenceKernels } from '../../src/backends/reference/index.js';
import { BatchNorm, type Sequential } from '../../src/nn/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';

let w: QuantWasmExports;
const rng = new Rng(21, 1);

before(async () => {
  const r = spawnSync(process.execPath, ['scripts/build-quant-kernels.mjs'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  w = await loadQuantKernels(readFileSync(`build/${quantWasmFile()}`));
  assert.equal(useFastestBackend(), 'wasm');
});
after(() => useQuantKernels(null));

const signs = (n: number) => Float32Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1));

test('wasm binary GEMM (i64.popcnt and i8x16.popcnt) equals the TypeScript kernel, edges and long K', () => {
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 33], [2, 4, 128], [5, 7, 1000], [4, 8, 4096], [2, 3, 70000]] as const) {
    const a = packSignRows(signs(m * k), m, k), b = packSignRows(signs(n * k), n, k);
    const expected = Array.from(binaryGemm(a, b, m, n, k));
    assert.deepEqual(Array.from(new QuantWasmKernels(w, false).binaryGemm(a, b, m, n, k)), expected, `scalar ${m}x${n}x${k}`);
    assert.deepEqual(Array.from(new QuantWasmKernels(w, true).binaryGemm(a, b, m, n, k)), expected, `simd ${m}x${n}x${k}`);
  }
});

test('wasm int8 GEMM (i32x4.dot_i16x8_s) equals exact int32 accumulation', () => {
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 17], [4, 8, 512], [5, 3, 1000], [9, 1, 400], [8, 2, 33]] as const) {
    const a = Int8Array.from({ length: m * k }, () => rng.int(256) - 128), b = Int8Array.from({ length: n * k }, () => rng.int(256) - 128);
    assert.deepEqual(Array.from(new QuantWasmKernels(w).int8Gemm(a, b, m, n, k)), Array.from(int8Gemm(a, b, m, n, k)), `${m}x${n}x${k}`);
  }
});

test('wasm f32 GEMM agrees with the TypeScript float GEMM', () => {
  const m = 5, n = 7, k = 99;
  const a = Float32Array.from({ length: m * k }, () => rng.normal()), b = Float32Array.from({ length: n * k }, () => rng.normal());
  const got = new QuantWasmKernels(w).floatGemm(a, b, m, n, k), expected = floatGemm(a, b, m, n, k);
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-4, `${v} vs ${expected[i]}`));
});

function withStats(model: Sequential): Sequential {
  for (const [, m] of model.namedModules()) {
    if (m instanceof BatchNorm) {
      m.runningMean.data().set(Float32Array.from({ length: m.channels }, () => rng.normal()));
      m.runningVar.data().set(Float32Array.from({ length: m.channels }, () => 1 + rng.uniform() * 10));
    }
  }
  return model.eval();
}

test('deployed models give identical outputs on wasm and reference kernels (binary conv with zero padding, int8)', () => {
  const n = 4;
  assert.equal(getBackend(), 'wasm');
  assert.notEqual(kernels('float32').binaryGemm, referenceKernels.binaryGemm, 'the wasm backend binds the loaded packed kernels');
  const x = Float32Array.from({ length: n * 784 }, () => rng.uniform());
  for (const model of [withStats(xnorNet(1)), withStats(larqMnistBnn(1)), w8a8Lenet5(1)]) {
    noGrad(() => scope(() => model.call(fromValues(x, [n, 1, 28, 28])))); // calibrates LSQ steps
    const d = convert(model, [1, 28, 28]);
    const wasm = runDeployed(d, x, [n, 1, 28, 28]).data;
    useQuantKernels(null);
    const ts = runDeployed(d, x, [n, 1, 28, 28]).data;
    useQuantKernels(w);
    wasm.forEach((v, i) => assert.ok(Math.abs(v - ts[i]!) <= 1e-5 * (1 + Math.abs(ts[i]!)), `output ${i}: ${v} vs ${ts[i]}`));
  }
});
