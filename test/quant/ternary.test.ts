// Issue 14's ternary presets (TTQ, pruning ternary, hyperspherical), pruning and sparse storage:
// pseudo-gradients against closed forms written out here, the deployed models against the float
// models they come from (LeNet-5 and ResNet-20), the wasm sparse GEMM against the reference, and
// structured pruning removing channels without changing any output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSplits } from '../../src/data/splits.js';
import { loadModule } from '../../src/io/checkpoint.js';
import { cli, cliFreshBatch, lastJson } from '../cli/helpers.js';
import { fromValues } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { grad } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/mode.js';
import { mul, sum } from '../../src/ops/index.js';
import fc from 'fast-check';
import { Adam } from '../../src/optim/optimizer.js';
import { Rng } from '../../src/util/rng.js';
import { loadQuantWasm } from './wasm-setup.js';
import { lenet5, type Sequential } from '../../src/nn/index.js';
import { createModel } from '../../src/nn/models.js';
import {
  applyQuantPreset, convert, decodeDeployed, denseWeights, encodeDeployed, encodeFloat, encodeTernary, Hyperspherical,
  lampCounts, magnitudeThreshold, payloadBytes, Pruner, withPruning, PrunedTernary, QuantWasmKernels, runDeployed, runPacked, setQuantProgress,
  sparseGemm, summary, toCsr, Ttq, useQuantKernels, type MatStage,
} from '../../src/quant/index.js';
import { matStages } from '../../src/quant/runtime.js';

const rng = new Rng(41, 1);
const MNIST = '../shared/data/mnist-t10k';
let wasm: QuantWasmKernels;

before(async () => {
  wasm = await loadQuantWasm();
});
after(() => useQuantKernels(null));

// [4, 6]: 4 output channels of 6, with exact zeros and ties.
const W = [0, 0.3, -0.3, 1.2, -0.05, 0.6, ...Array.from({ length: 18 }, () => rng.normal() * 0.5)];
const G = W.map(() => rng.normal());
const SHAPE = [4, 6];
const ch = (i: number) => Math.floor(i / 6);

function close(actual: number[], expected: number[], what: string, tol = 1e-9): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}] (w=${W[i]}): ${a} vs ${expected[i]}`));
}

/** Forward, pseudo-gradient and the autograd gradients of sum(q(w)·g) wrt w and `params`. */
function run(q: { forward(x: ReturnType<typeof fromValues>): ReturnType<typeof fromValues>; pseudoGradient(x: ReturnType<typeof fromValues>): ReturnType<typeof fromValues> }, params: ReturnType<typeof fromValues>[] = [], dtype: 'float32' | 'float64' = 'float64') {
  return scope(() => {
    const x = fromValues(W, SHAPE, dtype);
    x.requiresGrad = true;
    const y = q.forward(x);
    const gs = grad(sum(mul(y, fromValues(G, SHAPE, dtype))), [x, ...params]);
    return { y: Array.from(y.values()), gx: Array.from(gs[0]!.values()), gp: gs.slice(1).map((g) => g!.item()), pg: Array.from(q.pseudoGradient(x).values()) };
  });
}

test('ttq: +W_p / 0 / −W_n with Δ = 0.05·max|w|; latent gradient g·W_p | g | g·W_n, dW_p = Σ g over w ≥ Δ, dW_n = −Σ g over w ≤ −Δ', () => {
  const wp = 0.7, wn = 0.4, q = new Ttq({ wp, wn });
  const delta = 0.05 * Math.max(...W.map(Math.abs));
  // float32: the learned scales are float32 parameters (a float64 input would see converted copies).
  const r = run(q, [q.wp, q.wn], 'float32');
  close(r.y, W.map((w) => (w >= delta ? wp : w <= -delta ? -wn : 0)), 'forward', 1e-6);
  const d = (w: number) => (w >= delta ? wp : w <= -delta ? wn : 1);
  close(r.pg, W.map(d), 'pseudo-gradient', 1e-6);
  close(r.gx, W.map((w, i) => G[i]! * d(w)), 'latent gradient', 1e-6);
  close(r.gp, [W.reduce((s, w, i) => s + (w >= delta ? G[i]! : 0), 0), -W.reduce((s, w, i) => s + (w <= -delta ? G[i]! : 0), 0)], 'dWp, dWn', 1e-5);
  // Unset scales start at the mean of the positive and of the |negative| weights beyond Δ.
  const fresh = new Ttq();
  scope(() => fresh.forward(fromValues(W, SHAPE)));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  close([fresh.wp.item(), fresh.wn.item()], [mean(W.filter((w) => w >= delta)), mean(W.filter((w) => w <= -delta).map(Math.abs))], 'initial scales', 1e-6);
  assert.equal(q.deployment().negativeRatio!(), q.wn.item() / q.wp.item());
});

test('pruned_tern: layer quantile Δ, alpha_c = RMS of survivors (the L2-normalized pruned filter\'s ternary basis ±1/√nnz at its norm), refined STE |w|/Δ below Δ, decay of pruned latents', () => {
  const q = new PrunedTernary({ sparsity: 0.5, decay: 0.1 });
  // Without pruneUntil the ratio is the final one from the first step; with it, the cubic schedule.
  const ramp = new PrunedTernary({ sparsity: 0.5, pruneUntil: 0.4 });
  for (const p of [0, 0.3, 1]) {
    q.setProgress(p);
    ramp.setProgress(p);
    assert.equal(q.currentSparsity(), 0.5, `constant s(${p})`);
    assert.ok(Math.abs(ramp.currentSparsity() - 0.5 * (1 - (1 - Math.min(1, p / 0.4)) ** 3)) < 1e-12, `scheduled s(${p})`);
  }
  // The decay of the pruned latents waits for the schedule to end (the mask means something then).
  scope(() => {
    const late = new PrunedTernary({ sparsity: 0.5, decay: 0.5, pruneUntil: 0.4 }), w = fromValues(W, SHAPE, 'float64');
    late.setProgress(0.3);
    late.afterStep(w);
    close(Array.from(w.values()), W, 'no decay while pruning grows');
    late.setProgress(0.4);
    const cut = late.threshold(w);
    late.afterStep(w);
    close(Array.from(w.values()), W.map((v) => (Math.abs(v) < cut ? v * 0.5 : v)), 'decay once the ratio is final');
  });
  const sorted = W.map(Math.abs).sort((a, b) => a - b), delta = sorted[12]!;
  assert.equal(q.threshold(fromValues(W, SHAPE)), Math.fround(delta) === delta ? delta : q.threshold(fromValues(W, SHAPE)));
  const alpha = [0, 1, 2, 3].map((c) => {
    const s = W.slice(c * 6, c * 6 + 6).filter((w) => Math.abs(w) >= delta);
    return s.length ? Math.sqrt(s.reduce((a, w) => a + w * w, 0) / s.length) : 0;
  });
  const r = run(q);
  const t = (w: number) => (Math.abs(w) >= delta ? (w >= 0 ? 1 : -1) : 0);
  close(r.y, W.map((w, i) => alpha[ch(i)]! * t(w)), 'forward');
  const d = (w: number, i: number) => alpha[ch(i)]! * (Math.abs(w) >= delta ? 1 : Math.abs(w) / delta);
  close(r.pg, W.map(d), 'pseudo-gradient');
  close(r.gx, W.map((w, i) => G[i]! * d(w, i)), 'gradient');
  // Each filter's ternary vector has the L2 norm of its surviving weights.
  [0, 1, 2, 3].forEach((c) => {
    const norm = (v: number[]) => Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    close([norm(r.y.slice(c * 6, c * 6 + 6))], [norm(W.slice(c * 6, c * 6 + 6).filter((w) => Math.abs(w) >= delta))], `norm of filter ${c}`);
  });
  scope(() => {
    const w = fromValues(W, SHAPE, 'float64');
    q.afterStep(w);
    close(Array.from(w.values()), W.map((v) => (Math.abs(v) < delta ? v * 0.9 : v)), 'decayed latents');
  });
  assert.equal(magnitudeThreshold([0, 0, 0, 1], 0.25), Number.MIN_VALUE, 'zeros are pruned even when they fill the quantile');
});

test('hq_tern: sparsity s·(1 − (1 − p/pruneUntil)³), plain STE g·alpha_c, filters projected to their first radius, survivors re-initialised to r·sign/√nnz when pruning completes', () => {
  const q = new Hyperspherical({ sparsity: 0.5, pruneUntil: 0.5 });
  for (const [p, s] of [[0, 0], [0.25, 0.5 * (1 - 0.5 ** 3)], [0.5, 0.5], [1, 0.5]] as const) {
    q.setProgress(p);
    assert.ok(Math.abs(q.currentSparsity() - s) < 1e-12, `s(${p})`);
  }
  q.setProgress(1);
  const r = run(q);
  const delta = W.map(Math.abs).sort((a, b) => a - b)[12]!;
  const alpha = [0, 1, 2, 3].map((c) => {
    const s = W.slice(c * 6, c * 6 + 6).filter((w) => Math.abs(w) >= delta);
    return Math.sqrt(s.reduce((a, w) => a + w * w, 0) / s.length);
  });
  close(r.pg, W.map((_, i) => alpha[ch(i)]!), 'pseudo-gradient');
  close(r.gx, W.map((_, i) => G[i]! * alpha[ch(i)]!), 'gradient');
  scope(() => {
    const h = new Hyperspherical({ sparsity: 0.5, pruneUntil: 0.5 });
    const w = fromValues(W, SHAPE, 'float64');
    const radius = (v: ArrayLike<number>, c: number) => Math.sqrt(Array.from(v).slice(c * 6, c * 6 + 6).reduce((a, b) => a + b * b, 0));
    const radii = [0, 1, 2, 3].map((c) => radius(W, c));
    h.setProgress(0.2);
    h.afterStep(w); // records the radii
    const d = w.data() as Float64Array;
    d[1] = 3; // an optimizer step moved filter 0 off its sphere
    h.afterStep(w);
    close([radius(w.values(), 0)], [radii[0]!], 'projected radius');
    h.setProgress(0.5); // pruning completes: re-initialisation
    const before = Array.from(w.values()), cut = magnitudeThreshold(before, 0.5);
    h.afterStep(w);
    [0, 1, 2, 3].forEach((c) => {
      const seg = before.slice(c * 6, c * 6 + 6), nnz = seg.filter((v) => Math.abs(v) >= cut).length;
      close(Array.from(w.values()).slice(c * 6, c * 6 + 6), seg.map((v) => (Math.abs(v) >= cut ? (radii[c]! * (v >= 0 ? 1 : -1)) / Math.sqrt(nnz) : 0)), `re-initialised filter ${c}`);
    });
  });
});

function images(n: number, shape: number[]): Float32Array {
  return Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, () => (rng.uniform() < 0.5 ? 0 : rng.uniform()));
}

function floatForward(model: Sequential, x: Float32Array, shape: number[]): Float32Array {
  model.eval();
  return noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x, shape)).values())));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

test('ttq, pternary and hq deploy faithfully on LeNet-5 and ResNet-20 (2-bit or sparse ternary weights); file size = summary within 5 %', () => {
  const cases: [string, string, number[]][] = [
    ['lenet', 'ttq', [1, 28, 28]], ['lenet', 'pternary', [1, 28, 28]], ['lenet', 'hq', [1, 28, 28]],
    ['resnet20', 'hq', [3, 8, 8]],
  ];
  for (const [modelName, preset, item] of cases) {
    const model = applyQuantPreset(modelName, preset, 3, item, 10);
    setQuantProgress(model, 1);
    const n = 6, shape = [n, ...item], x = images(n, item);
    noGrad(() => scope(() => void model.call(fromValues(x, shape)))); // BN statistics, TTQ scales
    const expected = floatForward(model, x, shape);
    const deployed = decodeDeployed(encodeDeployed(convert(model, item)), preset);
    const got = runDeployed(deployed, x, shape), packed = runPacked(deployed, x, shape);
    const scale = Math.max(...expected.map(Math.abs));
    assert.ok(maxDiff(got.data, expected) <= 1e-4 * scale, `${modelName} ${preset}: deployed vs float ${maxDiff(got.data, expected)}`);
    assert.ok(maxDiff(packed.data, got.data) <= 1e-4 * scale, `${modelName} ${preset}: packed vs TypeScript runtime ${maxDiff(packed.data, got.data)}`);
    const mats = matStages(deployed.stages);
    assert.ok(mats.some((s) => s.kernel === 'ternary_weights'), `${modelName} ${preset}: ternary stages`);
    // Half of each pternary/hq layer is pruned: one mask bit + one sign bit per non-zero beats two planes.
    if (preset !== 'ttq') assert.ok(mats.filter((s) => s.kernel === 'ternary_weights').every((s) => s.mask), `${modelName} ${preset}: sparse ternary encoding`);
    else assert.ok(mats.some((s) => s.negRatio !== undefined));
    const predicted = summary(model, item).memoryBits / 8, payload = payloadBytes(deployed);
    assert.ok(Math.abs(payload - predicted) / predicted <= 0.05, `${modelName} ${preset}: payload ${payload} B vs summary ${predicted} B`);
    model.dispose();
  }
});

test('sparse encodings: chosen only when smaller, decoded back exactly, lying files rejected', () => {
  const dense = Float32Array.from({ length: 64 }, () => rng.normal());
  assert.equal(encodeFloat(dense).mask, undefined);
  const sparse = dense.map((v, i) => (i % 5 ? 0 : v));
  const e = encodeFloat(sparse, 8, 8);
  assert.ok(e.mask && e.weights.length === 13);
  const stage = (o: Partial<MatStage>) => ({ op: 'dense', kernel: 'float', outC: 8, inC: 8, k: 0, stride: 1, pad: 0, inputStep: 0, ...o }) as MatStage;
  assert.deepEqual(Array.from(denseWeights(stage(e))), Array.from(sparse));
  const codes = Array.from({ length: 8 * 40 }, () => (rng.uniform() < 0.3 ? (rng.uniform() < 0.5 ? 1 : -1) : 0));
  const t = encodeTernary(codes, 8, 40);
  assert.ok(t.mask, 'ternary at 30 % density: mask + signs');
  const st = stage({ kernel: 'ternary_weights', inC: 40, ...t, negRatio: 0.5 });
  assert.deepEqual(Array.from(denseWeights(st)), codes.map((c) => (c < 0 ? -0.5 : c)));
  assert.equal(encodeTernary(new Array<number>(8 * 64).fill(1), 8, 64).mask, undefined, 'no zeros (no row padding): two planes');
  assert.throws(() => denseWeights(stage({ ...e, weights: e.weights.subarray(1) })), /sparse weights: 13 non-zeros need 13 values, the stage has 12/);
  assert.throws(() => denseWeights(stage({ ...e, mask: e.mask!.subarray(1) })), /mask has 1 words, expected 2/);
});

test('wasm sparseGemm equals the reference bit for bit (p = 1, tails, batches)', () => {
  for (const [rows, k, p, batch, dens] of [[7, 30, 1, 5, 0.2], [16, 150, 37, 2, 0.3], [5, 9, 4, 1, 0.9], [3, 8, 6, 2, 0]] as const) {
    const w = Float32Array.from({ length: rows * k }, () => (rng.uniform() < dens ? rng.normal() : 0));
    const x = Float32Array.from({ length: batch * k * p }, () => rng.normal());
    const { rowPtr, cols, values } = toCsr(w, rows, k);
    const want = sparseGemm(rowPtr, cols, values, x, rows, k, p, batch);
    assert.deepEqual(Array.from(wasm.sparseGemm(rowPtr, cols, values, x, rows, k, p, batch)), Array.from(want), `${rows}x${k}x${p}x${batch}`);
    // The reference is the dense product (up to float32 rounding).
    for (let b = 0; b < batch; b++) for (let o = 0; o < rows; o++) for (let q = 0; q < p; q++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += w[o * k + t]! * x[(b * k + t) * p + q]!;
      assert.ok(Math.abs(s - want[(b * rows + o) * p + q]!) < 1e-4 * (1 + Math.abs(s)));
    }
  }
});

test('magnitude pruning follows the cubic schedule to exactly S; the pruned LeNet-5 deploys sparse and runs the same on the sparse path', () => {
  const model = lenet5(10, 4);
  const pruner = new Pruner(model, 100, { sparsity: 0.9, begin: 0.1, end: 0.6 });
  assert.equal(pruner.sparsityAt(10), 0);
  assert.ok(Math.abs(pruner.sparsityAt(35) - 0.9 * (1 - 0.5 ** 3)) < 1e-12);
  assert.equal(pruner.sparsityAt(60), 0.9);
  assert.equal(pruner.lastUpdate(37), 10 + Math.floor(27 / pruner.every) * pruner.every);
  pruner.update(60);
  assert.ok(Math.abs(pruner.achieved() - 0.9) < 1e-3, `achieved ${pruner.achieved()}`);
  const shape = [4, 1, 28, 28], x = images(4, [1, 28, 28]);
  const expected = floatForward(model, x, shape);
  const deployed = decodeDeployed(encodeDeployed(convert(model, [1, 28, 28])));
  assert.ok(deployed.stages.some((s) => 'mask' in s && s.mask), 'sparse storage');
  assert.ok(maxDiff(runPacked(deployed, x, shape).data, expected) < 1e-4, 'sparse path vs float model');
  const floatBytes = encodeDeployed(convert(lenet5(10, 4), [1, 28, 28])).length;
  assert.ok(encodeDeployed(deployed).length <= 0.15 * floatBytes, `90 % pruned file ${encodeDeployed(deployed).length} B vs float ${floatBytes} B`);
});

test('LAMP allocation equals the scores computed from their definition; every layer keeps its largest weight', () => {
  fc.assert(fc.property(
    fc.array(fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }),
    fc.double({ min: 0, max: 1, noNaN: true }),
    (layers, frac) => {
      const values = layers.map((l) => l.map((v, i) => (i % 2 ? -v : v) / 1000));
      const n = values.reduce((a, l) => a + l.length, 0), total = Math.floor(frac * n);
      // Reference: score = w² / Σ w'² over the layer's w' with |w'| ≥ |w| (magnitudes are distinct here).
      const all = values.flatMap((l, layer) => l.map((w) => ({ layer, score: (w * w) / l.filter((u) => Math.abs(u) >= Math.abs(w)).reduce((a, u) => a + u * u, 0) })));
      all.sort((a, b) => a.score - b.score);
      const want = values.map((_, layer) => all.slice(0, total).filter((e) => e.layer === layer).length);
      const got = lampCounts(values, total);
      assert.deepEqual(got, want);
      if (total <= n - values.length) got.forEach((c, i) => assert.ok(c < values[i]!.length, `layer ${i} keeps a weight`));
    },
  ), { numRuns: 60 });
});

test('withPruning: pruned weights stay 0 through Adam steps, with zero gradients and zero moments; LAMP and uniform reach S', () => {
  for (const allocation of ['lamp', 'uniform'] as const) {
    const model = lenet5(10, 6), params = model.parameters();
    const opt = new Adam(params, { lr: 1e-2 }), steps = 8;
    const { pruner } = withPruning(opt, model, steps, { sparsity: 0.9, begin: 0, end: 0.5, every: 1, allocation });
    const r = new Rng(7, allocation.length);
    const weights = params.filter((p) => p.rank >= 2).slice(1, -1);   // the pruned layers (first and last stay dense)
    let wasZero = weights.map((w) => Array.from(w.values(), (x) => x === 0));
    for (let step = 1; step <= steps; step++) {
      for (const p of params) {
        p.grad?.dispose();
        p.grad = fromValues(Array.from({ length: p.size }, () => r.normal()), p.shape, p.dtype, 'gradient');
      }
      opt.step();
      const { tensors } = opt.stateDict();
      for (const [k, w] of weights.entries()) {
        const i = params.indexOf(w), v = w.values(), m = tensors.get(`${i}.0`)!.values(), s2 = tensors.get(`${i}.1`)!.values();
        const zeros = Array.from(v).filter((x) => x === 0).length;
        assert.ok(zeros > 0, `${allocation}: step ${step} prunes`);
        v.forEach((x, j) => x === 0 && assert.ok(m[j] === 0 && s2[j] === 0, `${allocation}: step ${step}: pruned weight ${j} has moments ${m[j]}, ${s2[j]}`));
        // The gradients of the weights pruned before this step were masked (zeroed in place) before it.
        const g = w.grad!.values();
        wasZero[k]!.forEach((z, j) => z && assert.equal(g[j], 0, `${allocation}: gradient of pruned weight ${j}`));
      }
      wasZero = weights.map((w) => Array.from(w.values(), (x) => x === 0));
    }
    assert.ok(Math.abs(pruner.achieved() - 0.9) < 2e-3, `${allocation}: achieved ${pruner.achieved()}`);
    const density = (w: (typeof weights)[number]) => Array.from(w.values()).filter((x) => x !== 0).length / w.size;
    const [conv2, fc1] = weights.map(density);
    if (allocation === 'uniform') assert.ok(Math.abs(conv2! - fc1!) < 2e-3, `uniform: conv2 ${conv2} vs fc1 ${fc1}`);
    else assert.ok(conv2! > 1.5 * fc1!, `lamp keeps the small conv denser: conv2 ${conv2} vs fc1 ${fc1}`);
  }
});

test('channel pruning zeroes whole channels; convert removes them (and the inputs reading them) without changing any output', () => {
  for (const [name, build, item] of [
    ['lenet', () => lenet5(10, 5), [1, 28, 28]],
    ['resnet20', () => createModel('resnet20', [3, 12, 12], 10, 5) as Sequential, [3, 12, 12]],
  ] as [string, () => Sequential, number[]][]) {
    const model = build();
    const shape = [3, ...item], x = images(3, item);
    noGrad(() => scope(() => void model.call(fromValues(x, shape))));
    const pruner = new Pruner(model, 10, { sparsity: 0.5, structured: true, begin: 0, end: 0 });
    pruner.update(1);
    assert.ok(pruner.achieved() >= 0.45, `${name}: ${pruner.achieved()} of the channels pruned`);
    const expected = floatForward(model, x, shape);
    const deployed = convert(model, item);
    const got = runPacked(deployed, x, shape);
    assert.ok(maxDiff(got.data, expected) < 1e-4 * Math.max(...expected.map(Math.abs)), `${name}: deployed vs float ${maxDiff(got.data, expected)}`);
    const outs = (d: typeof deployed) => matStages(d.stages).map((s) => s.outC);
    const full = outs(convert(build(), item));
    assert.ok(outs(deployed).reduce((a, b) => a + b, 0) < full.reduce((a, b) => a + b, 0), `${name}: ${outs(deployed)} vs ${full}`);
    const s = summary(model, item);
    assert.ok(s.layers.some((l) => l.removedChannels > 0));
    const payload = payloadBytes(deployed), predicted = s.memoryBits / 8;
    assert.ok(Math.abs(payload - predicted) / predicted <= 0.05, `${name}: payload ${payload} B vs summary ${predicted} B`);
  }
});

test('train --prune / --prune-channels, convert, then infer in a fresh process predicts item for item as the deployed model in process', { skip: !existsSync(MNIST) && 'MNIST data not present' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-prune-'));
  try {
    const items = 200;
    const { test: testSet } = await loadSplits('mnist', { dataDir: MNIST, limit: items });
    const runs: { preds: string; want: number[]; sgq: string }[] = [];
    for (const [flag, value] of [['--prune', '0.9'], ['--prune-channels', '0.5']] as const) {
      const ckpt = join(dir, `${flag}.safetensors`), sgq = join(dir, `${flag}.sgq`), preds = join(dir, `${flag}.txt`);
      const t = await cli('train', '--model', 'lenet', flag, value, '--data', 'mnist', '--data-dir', MNIST, '--epochs', '1', '--limit', String(items), '--lr', '3e-3', '--save', ckpt, '--json');
      assert.equal(t.code, 0, t.stderr);
      const achieved = lastJson(t).sparsity[flag === '--prune' ? 'weights' : 'channels'];
      assert.ok(Math.abs(achieved - Number(value)) < 0.05, `${flag}: sparsity ${achieved}`);
      const c = await cli('convert', '--checkpoint', ckpt, '--out', sgq, '--json');
      assert.equal(c.code, 0, c.stderr);
      const model = createModel('lenet', [1, 28, 28], 10, 1) as Sequential;
      loadModule(model, ckpt);
      const out = runDeployed(convert(model, [1, 28, 28]), testSet.values(), [testSet.length, 1, 28, 28]);
      const want = Array.from({ length: items }, (_, i) => {
        const row = Array.from(out.data.subarray(i * 10, i * 10 + 10));
        return row.indexOf(Math.max(...row));
      });
      runs.push({ preds, want, sgq });
    }
    const r = cliFreshBatch(runs.map((e) => ['infer', e.sgq, '--data', 'mnist', '--data-dir', MNIST, '--limit', String(items), '--predictions', e.preds, '--json']));
    assert.equal(r.code, 0, r.stderr);
    for (const e of runs) assert.deepEqual(readFileSync(e.preds, 'utf8').trim().split('\n').map(Number), e.want, e.sgq);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
