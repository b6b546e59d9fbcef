// Auto precision (issue 12, GACT): the allocator against exhaustive search, the expected rounding
// error against repeated stochastic quantization, the calibration probes against an independent
// per-tensor measurement (own hooks quantizing one save), and a tensor shared by two consumers
// allocated once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backward } from '../../src/autograd/backward.js';
import { withSavedTensorHooks } from '../../src/autograd/saved.js';
import { keep, scope } from '../../src/core/scope.js';
import { fromValues, type Tensor } from '../../src/core/tensor.js';
import { allocateBits, predictedVariance, type AllocationItem } from '../../src/compress/auto.js';
import { packTensor, quantNoiseEnergy, releasePacked, unpackTensor } from '../../src/compress/codecs.js';
import { Compression } from '../../src/compress/act.js';
import { Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { Module } from '../../src/nn/module.js';
import { add, crossEntropy } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

const LADDER = [1, 2, 4, 8] as const;

/** The optimum by enumerating every allocation. */
function bruteForce(items: AllocationItem[], avg: number): number {
  const total = items.reduce((s, it) => s + it.numel, 0);
  let best = Infinity;
  const bits: number[] = [];
  const walk = (i: number, used: number) => {
    if (used > avg * total + 1e-9) return;
    if (i === items.length) {
      best = Math.min(best, predictedVariance(items, bits));
      return;
    }
    for (const b of LADDER) {
      bits[i] = b;
      walk(i + 1, used + b * items[i]!.numel);
    }
  };
  walk(0, 0);
  return best;
}

test('allocateBits with cost tables: within the budget, never worse than uniform, near the exhaustive optimum', () => {
  let optimal = 0, runs = 0;
  fc.assert(fc.property(
    fc.array(fc.record({
      numel: fc.integer({ min: 1, max: 50 }),
      // Costs at 1, 2, 4, 8 bits, non-increasing (any shape: not the 1/(2^b - 1)^2 law).
      costs: fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 4, maxLength: 4 }).map((c) => [...c].sort((a, b) => b - a)),
    }), { minLength: 1, maxLength: 6 }),
    fc.constantFrom(1, 1.5, 2, 2.5, 3, 4, 6),
    (raw, avg) => {
      const items = raw.map((r) => ({ ...r, sensitivity: r.costs[0]! }));
      const bits = allocateBits(items, avg);
      const total = items.reduce((s, it) => s + it.numel, 0);
      assert.ok(bits.reduce((s, b, i) => s + b * items[i]!.numel, 0) <= avg * total + 1e-6, 'budget');
      const v = predictedVariance(items, bits), opt = bruteForce(items, avg);
      const uniform = LADDER.filter((b) => b <= avg).pop()!;
      assert.ok(v <= predictedVariance(items, items.map(() => uniform)) * (1 + 1e-9) + 1e-12, 'uniform');
      // Greedy and Lagrangian are heuristics for this knapsack: close to the optimum, usually on it.
      assert.ok(v <= opt * 1.5 + 1e-9, `variance ${v} vs optimum ${opt}`);
      runs++;
      if (v <= opt * (1 + 1e-9) + 1e-12) optimal++;
    }), { numRuns: 300, seed: 12 });
  assert.ok(optimal / runs > 0.9, `optimal in ${optimal}/${runs}`);
  // Equal sizes, budget 2.5 over two tensors: [4, 1] spends exactly 2.5 and wins when the first is
  // 100x more sensitive at every width (0.44 + 1 vs 11.1 + 0.11 for [2, 2]).
  const costs = (c: number) => [c, c / 9, c / 225, c / 65025];
  assert.deepEqual(allocateBits([{ sensitivity: 100, numel: 10, costs: costs(100) }, { sensitivity: 1, numel: 10, costs: costs(1) }], 2.5), [4, 1]);
});

test('quantNoiseEnergy: the expected squared error of stochastic rounding, against repeated quantization', () => {
  scope(() => {
    const rng = new Rng(2);
    // Skewed values (many exact zeros, as after a ReLU) where the step²/4 bound is far off.
    const v = Float32Array.from({ length: 4 * 512 }, () => Math.max(0, rng.normal()) * 3);
    const x = fromValues(v, [4, 512]);
    const all = quantNoiseEnergy(x, { kind: 'quant', bits: 2, groupSize: 256 }, LADDER);
    for (const [k, bits] of LADDER.entries()) {
      const e = { kind: 'quant' as const, bits, groupSize: 256 };
      const expected = all[k]!;
      assert.deepEqual(quantNoiseEnergy(x, e), [expected]); // one width alone = the same width among several
      let sum = 0;
      const draws = 200;
      for (let s = 0; s < draws; s++) {
        const p = packTensor(x, e, { seed: 3, stream: 0, step: s });
        const y = unpackTensor(p).data() as Float32Array;
        for (let i = 0; i < v.length; i++) sum += (y[i]! - v[i]!) ** 2;
        releasePacked(p);
      }
      const measured = sum / draws;
      assert.ok(Math.abs(measured / expected - 1) < 0.05, `${bits} bits: measured ${measured} expected ${expected}`);
    }
  });
});

/** A model whose first hidden activation has 30x the range it would have (the next layer scaled back by 1/30). */
function model(): Sequential {
  const rng = new Rng(4);
  const m = new Sequential(new Linear(32, 32, { rng }), ReLU(), new Linear(32, 32, { rng }), ReLU(), new Linear(32, 32, { rng }), ReLU(), new Linear(32, 4, { rng }));
  const [w0, , w2] = m.parameters().map((p) => p.data() as Float32Array);
  for (let i = 0; i < w0!.length; i++) w0![i]! *= 30;
  for (let i = 0; i < w2!.length; i++) w2![i]! /= 30;
  return m;
}

test('auto calibration: each probe matches an independent one-tensor measurement, more bits where it is larger', () => {
  const rng = new Rng(6);
  const x = fromValues(Float32Array.from({ length: 64 * 32 }, () => rng.normal()), [64, 32]);
  const y = fromValues(Int32Array.from({ length: 64 }, (_, i) => i % 4), [64], 'int32');
  const m = model();
  const gradsOf = (hooks: Parameters<typeof withSavedTensorHooks>[0] | null): Float32Array[] => {
    scope(() => backward(hooks ? withSavedTensorHooks(hooks, () => crossEntropy(m.call(x), y)) : crossEntropy(m.call(x), y)));
    const g = m.parameters().map((p) => p.grad!.values() as Float32Array);
    m.zeroGrad();
    return g;
  };
  const exact = gradsOf(null);
  const act = new Compression({ mode: 'auto', autoBits: 2.5, model: m, seed: 1 });
  scope(() => backward(act.run(() => crossEntropy(m.call(x), y))));
  m.zeroGrad();
  scope(() => backward(act.run(() => crossEntropy(m.call(x), y)))); // allocation in force
  m.zeroGrad();
  const a = act.allocation()!;
  // The network input and the last layer's input are edges: the two middle activations are allocated.
  assert.deepEqual(a.saves.map((s) => s.module), ['2', '4']);
  // Independent: own hooks quantize only save `target` (by its module) at 2 bits, 30 noise draws.
  const independent = a.saves.map((s) => {
    let err = 0;
    for (let d = 0; d < 30; d++) {
      const g = gradsOf({
        pack: (t: Tensor, info) => (info.module === s.module && info.op === s.op && info.name === s.name
          ? { p: packTensor(t, { kind: 'quant', bits: 2, groupSize: 256 }, { seed: 9, stream: 0, step: d }) }
          : { t: keep(t.view(t.shape, t.strides, t.offset)) }),
        unpack: (h: { p?: ReturnType<typeof packTensor>; t?: Tensor }) => (h.p ? unpackTensor(h.p) : h.t!.view(h.t!.shape, h.t!.strides, h.t!.offset)),
        release: (h: { p?: ReturnType<typeof packTensor>; t?: Tensor }) => (h.p ? releasePacked(h.p) : h.t!.dispose()),
      });
      g.forEach((v, i) => v.forEach((q, j) => (err += (q - exact[i]![j]!) ** 2)));
    }
    return err / 30;
  });
  a.saves.forEach((s, i) => {
    const ratio = s.probeError! / independent[i]!;
    assert.ok(ratio > 0.5 && ratio < 2, `${s.module}: probe ${s.probeError} vs independent ${independent[i]}`);
  });
  const [hi, lo] = independent[0]! > independent[1]! ? [0, 1] : [1, 0];
  assert.ok(independent[hi]! > 5 * independent[lo]!, JSON.stringify(independent));
  assert.deepEqual([a.saves[hi]!.bits, a.saves[lo]!.bits], [4, 1]);
  assert.equal(a.meanBits, 2.5); // the budget spent exactly
  x.dispose(); y.dispose(); m.dispose();
});

class Fork extends Module {
  readonly a: Linear;
  readonly b: Linear;
  constructor(rng: Rng) {
    super();
    this.a = this.registerModule('a', new Linear(32, 32, { rng }));
    this.b = this.registerModule('b', new Linear(32, 32, { rng }));
  }
  forward(x: Tensor): Tensor {
    return add(this.a.call(x), this.b.call(x));
  }
}

test('auto: a tensor saved by two consumers is one allocation item, one packed copy, counted once', () => {
  const rng = new Rng(8);
  const m = new Sequential(new Linear(32, 32, { rng }), ReLU(), new Fork(rng), ReLU(), new Linear(32, 4, { rng }));
  const x = fromValues(Float32Array.from({ length: 64 * 32 }, () => rng.normal()), [64, 32]);
  const y = fromValues(Int32Array.from({ length: 64 }, (_, i) => i % 4), [64], 'int32');
  const act = new Compression({ mode: 'auto', autoBits: 2, model: m, seed: 1 });
  for (let s = 0; s < 2; s++) {
    scope(() => backward(act.run(() => crossEntropy(m.call(x), y))));
    m.zeroGrad();
  }
  const a = act.allocation()!;
  assert.equal(a.saves.length, 1, JSON.stringify(a.saves));
  assert.deepEqual(a.saves[0]!.consumers, ['matmul:a', 'matmul:a']);
  assert.equal(a.saves[0]!.numel, 64 * 32);
  assert.equal(act.lastStats().dedupHits, 1);
  x.dispose(); y.dispose(); m.dispose();
});

test('auto with calibration: equal seeds train bit-identically, another seed differently', () => {
  const rng = new Rng(10);
  const xs = Float32Array.from({ length: 64 * 32 }, () => rng.normal());
  const train = (seed: number): Float32Array[] => {
    const m = model();
    const x = fromValues(xs, [64, 32]);
    const y = fromValues(Int32Array.from({ length: 64 }, (_, i) => i % 4), [64], 'int32');
    // Estimations every 2 steps, every 2nd a calibration: steps 0 and 4 calibrate, 2 only estimates.
    const act = new Compression({ mode: 'auto', autoBits: 2, autoInterval: 2, autoCalibrate: 2, model: m, seed });
    for (let s = 0; s < 6; s++) {
      scope(() => backward(act.run(() => crossEntropy(m.call(x), y))));
      for (const p of m.parameters()) {
        const w = p.data() as Float32Array, g = p.grad!.data() as Float32Array;
        for (let i = 0; i < w.length; i++) w[i]! -= 0.01 * g[i]!;
      }
      m.zeroGrad();
    }
    const out = m.parameters().map((p) => Float32Array.from(p.data() as Float32Array));
    x.dispose(); y.dispose(); m.dispose();
    return out;
  };
  const [a, b, c] = [train(1), train(1), train(2)];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});
