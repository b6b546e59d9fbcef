// Hessian-guided mixed precision: Hutchinson traces by double backward agree with central
// differences of first-order gradients, the bit allocation honours the budget and the sensitivities,
// and the calibration check picks the candidate whose quantized model is closest to the float one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { mlp } from '../../src/nn/models.js';
import { allocateBits, candidateAllocations, hessianTraces, selectBits } from '../../src/quant/ptq/mixed.js';
import { ptq, simulate } from '../../src/quant/ptq/ptq.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { softmax } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

useFastestBackend();

test('Hutchinson traces: grad(createGraph) Hessian-vector products = finite differences of gradients', () => {
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 8 * 64 }, () => rng.uniform());
  const m = mlp([64, 24, 16, 10], 2);
  const a = hessianTraces(m, x, [8, 64], { hvp: 'autograd', samples: 3 });
  const f = hessianTraces(m, x, [8, 64], { hvp: 'finite-difference', samples: 3 });
  assert.deepEqual(a.map((s) => s.hvp), ['autograd', 'autograd', 'autograd']);
  a.forEach((s, i) => assert.ok(Math.abs(s.trace - f[i]!.trace) <= 0.01 * Math.abs(s.trace) + 1e-3, `layer ${i}: ${s.trace} vs ${f[i]!.trace}`));
  assert.ok(a[0]!.trace > 0, 'cross-entropy curvature of the first layer is positive');
});

test('allocateBits: within the budget, more bits where the trace is larger', () => {
  const m = mlp([64, 32, 32, 10], 5);
  const sens = (traces: number[]) => traces.map((trace, i) => ({ path: String(i), params: 0, trace, hvp: 'autograd' as const }));
  const sizes = [64 * 32, 32 * 32, 32 * 10], total = sizes.reduce((s, v) => s + v, 0);
  for (const traces of [[1000, 1, 1], [1, 1, 1000]]) {
    const bits = allocateBits(m, sens(traces), { avgBits: 4 });
    assert.ok(bits.reduce((s, b, i) => s + b * sizes[i]!, 0) <= 4 * total);
    const hot = traces.indexOf(1000);
    assert.ok(bits.every((b) => b <= bits[hot]!), `bits ${bits} for traces ${traces}`);
  }
  assert.throws(() => allocateBits(m, sens([1, 1, 1]), { avgBits: 2 }), /below the narrowest/);
});

test('candidateAllocations fit the budget (greedy first, uniform 4 included); selectBits picks the least KL (margin 0) or a mixed one only when it beats uniform beyond the noise, recomputed here', () => {
  const rng = new Rng(4);
  const m = mlp([64, 32, 32, 10], 6);
  const x = Float32Array.from({ length: 32 * 64 }, () => rng.uniform()), shape = [32, 64];
  const sizes = [64 * 32, 32 * 32, 32 * 10], total = sizes.reduce((s, v) => s + v, 0);
  const sens = hessianTraces(m, x, shape, { samples: 2 });
  const cands = candidateAllocations(m, sens, { avgBits: 4 });
  assert.deepEqual(cands[0], allocateBits(m, sens, { avgBits: 4 }));
  assert.ok(cands.some((b) => b.join() === '4,4,4'), `uniform 4-bit among ${JSON.stringify(cands)}`);
  for (const b of cands) assert.ok(b.reduce((s, v, i) => s + v * sizes[i]!, 0) <= 4 * total, `${b} over budget`);
  // A deliberately poor candidate (3 bits everywhere) next to them: never the choice.
  const choice = selectBits(m, x, shape, [[3, 3, 3], ...cands], 8, { margin: 0 });
  const kl = (bits: number[]) => klItems(bits).reduce((a, b) => a + b, 0) / 32;
  const klItems = (bits: number[]) => {
    const probs = () => noGrad(() => scope(() => Float32Array.from(softmax(m.call(fromValues(x, shape)), 1).values())));
    const p = probs(), restore = simulate(m, ptq(m, x, shape, { wBits: bits, aBits: 8 }));
    const q = probs();
    restore();
    return Array.from({ length: 32 }, (_, r) => {
      let s = 0;
      for (let i = r * 10; i < (r + 1) * 10; i++) s += p[i]! * (Math.log(p[i]!) - Math.log(q[i]!));
      return s;
    });
  };
  const best = choice.scores.reduce((a, b) => (b.kl < a.kl ? b : a));
  assert.deepEqual(choice.bits, best.bits);
  assert.notDeepEqual(choice.bits, [3, 3, 3]);
  assert.ok(Math.abs(kl(choice.bits) - best.kl) <= 1e-6 + 1e-3 * best.kl, `KL ${kl(choice.bits)} vs reported ${best.kl}`);
  assert.ok(kl([3, 3, 3]) > best.kl);
  // With AdaRound finalists: the uniform candidates and the 2 best under RTN are scored again, the least of those chosen.
  const ada = selectBits(m, x, shape, [[3, 3, 3], ...cands], 8, { method: 'adaround', iters: 5, margin: 0 });
  const rescored = ada.scores.filter((c) => c.klMethod !== undefined);
  assert.ok(rescored.some((c) => c.bits.join() === '4,4,4') && rescored.some((c) => c.bits.join() === '3,3,3'));
  assert.equal(rescored.length, new Set([...rescored.map((c) => c.bits.join())]).size);
  assert.deepEqual(ada.bits, rescored.reduce((a, b) => (b.klMethod! < a.klMethod! ? b : a)).bits);
  // Default margin: a mixed choice beats the best uniform candidate by 2 standard errors of the
  // per-item KL difference; when none does, the uniform one is the choice.
  const upper = (bits: number[], u: number[]) => {
    const a = klItems(bits), b = klItems(u), d = a.map((v, i) => v - b[i]!), md = d.reduce((x, y) => x + y, 0) / d.length;
    return md + 2 * Math.sqrt(d.reduce((x, v) => x + (v - md) ** 2, 0) / (d.length - 1) / d.length);
  };
  const sound = selectBits(m, x, shape, cands, 8), u = sound.uniform!;
  const bestUniform = cands.filter((b) => b.every((v) => v === b[0])).reduce((a, b) => (kl(b) < kl(a) ? b : a));
  assert.deepEqual(u, bestUniform);
  if (sound.bits.join() === u.join()) for (const b of cands.filter((c) => !c.every((v) => v === c[0]))) assert.ok(upper(b, u) >= -1e-9, `${b} beats ${u}`);
  else assert.ok(upper(sound.bits, u) < 1e-9, `${sound.bits} does not beat ${u} beyond the noise`);
  // A mixed candidate far better than the only uniform one is chosen.
  assert.deepEqual(selectBits(m, x, shape, [[2, 2, 2], [8, 8, 6]], 8).bits, [8, 8, 6]);
});
