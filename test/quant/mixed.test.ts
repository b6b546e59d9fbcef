// Hessian-guided mixed precision: Hutchinson traces by double backward agree with central
// differences of first-order gradients, the bit allocation honours the budget and the sensitivities,
// and the calibration check picks the candidate whose quantized model is closest to the float one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { mlp } from '../../src/nn/models.js';
import { allocateBits, candidateAllocations, hessianTraces, selectBits, type BitChoice } from '../../src/quant/ptq/mixed.js';
import { ptq, simulate } from '../../src/quant/ptq/ptq.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { softmax } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';

useFastestBackend();

/**
 * The paired test recomputed from per-item losses and hits of the mix and the uniform candidate on
 * the confirmation items: mean loss difference + 2 standard errors below 0, and no fewer hits than
 * uniform (McNemar's discordant pairs); the choice follows.
 */
function checkConfirmation(choice: BitChoice, mix: number[], u: number[], m: { loss: number; hit: boolean }[], un: { loss: number; hit: boolean }[]): void {
  const d = m.map((g, i) => g.loss - un[i]!.loss), md = d.reduce((a, b) => a + b, 0) / d.length;
  const upper = md + 2 * Math.sqrt(d.reduce((a, v) => a + (v - md) ** 2, 0) / (d.length - 1) / d.length);
  const onlyMixed = m.filter((g, i) => g.hit && !un[i]!.hit).length, onlyUniform = m.filter((g, i) => !g.hit && un[i]!.hit).length;
  assert.ok(Math.abs(choice.confirmation!.upper - upper) <= 1e-5 + 1e-3 * Math.abs(upper), `upper ${choice.confirmation!.upper} vs ${upper}`);
  assert.deepEqual([choice.confirmation!.onlyMixed, choice.confirmation!.onlyUniform], [onlyMixed, onlyUniform]);
  assert.deepEqual(choice.bits, upper < 0 && onlyMixed >= onlyUniform ? mix : u);
}

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

test('candidateAllocations fit the budget (greedy first, uniform 4 included); selectBits ranks on held-out items and keeps the best uniform candidate unless the best mixed one passes the paired test on other items, recomputed here', () => {
  const rng = new Rng(4);
  const m = mlp([64, 32, 32, 10], 6);
  const items = (n: number) => Float32Array.from({ length: n * 64 }, () => rng.uniform());
  const x = items(32), shape = [32, 64];
  const rank = { data: items(48), shape: [48, 64] }, confirm = { data: items(48), shape: [48, 64] };
  const sizes = [64 * 32, 32 * 32, 32 * 10], total = sizes.reduce((s, v) => s + v, 0);
  const sens = hessianTraces(m, x, shape, { samples: 2 });
  const cands = candidateAllocations(m, sens, { avgBits: 4 });
  assert.deepEqual(cands[0], allocateBits(m, sens, { avgBits: 4 }));
  assert.ok(cands.some((b) => b.join() === '4,4,4'), `uniform 4-bit among ${JSON.stringify(cands)}`);
  for (const b of cands) assert.ok(b.reduce((s, v, i) => s + v * sizes[i]!, 0) <= 4 * total, `${b} over budget`);
  // Per-item KL and top-1 agreement with the float model, computed here with the engine's softmax.
  const gaps = (bits: number[], on: { data: Float32Array; shape: number[] }) => {
    const probs = () => noGrad(() => scope(() => Float32Array.from(softmax(m.call(fromValues(on.data, on.shape)), 1).values())));
    const p = probs(), restore = simulate(m, ptq(m, x, shape, { wBits: bits, aBits: 8 }));
    const q = probs();
    restore();
    const top = (v: Float32Array, r: number) => Array.from(v.subarray(r * 10, r * 10 + 10)).reduce((b, y, i, a) => (y > a[b]! ? i : b), 0);
    return Array.from({ length: on.shape[0]! }, (_, r) => {
      let kl = 0;
      for (let i = r * 10; i < (r + 1) * 10; i++) kl += p[i]! * (Math.log(p[i]!) - Math.log(q[i]!));
      return { kl, agree: top(p, r) === top(q, r) };
    });
  };
  const klMean = (bits: number[]) => gaps(bits, rank).reduce((s, g) => s + g.kl, 0) / 48;
  const all = [[3, 3, 3], ...cands];
  const choice = selectBits(m, x, shape, all, 8, { heldOut: rank, confirm });
  for (const c of choice.scores) assert.ok(Math.abs(klMean(c.bits) - c.loss) <= 1e-6 + 1e-3 * c.loss, `${c.bits}: KL ${klMean(c.bits)} vs reported ${c.loss}`);
  const uniform = (b: number[]) => b.every((v) => v === b[0]);
  const least = (list: number[][]) => list.reduce((a, b) => (klMean(b) < klMean(a) ? b : a));
  const u = least(all.filter(uniform)), mix = least(all.filter((b) => !uniform(b)));
  assert.deepEqual(choice.uniform, u);
  assert.deepEqual(choice.confirmation!.bits, mix);
  // The paired test on the confirmation items: mean KL difference + 2 standard errors below 0, and
  // no fewer items agreeing with the float model's class than uniform (McNemar's discordant pairs).
  const gm = gaps(mix, confirm), gu = gaps(u, confirm);
  checkConfirmation(choice, mix, u, gm.map((g) => ({ loss: g.kl, hit: g.agree })), gu.map((g) => ({ loss: g.kl, hit: g.agree })));
  // A margin no mixed candidate can beat keeps the uniform one; a mixed candidate far better than
  // the only uniform one is chosen (ranked and confirmed on halves of the held-out items by default).
  assert.deepEqual(selectBits(m, x, shape, all, 8, { heldOut: rank, confirm, margin: 1e9 }).bits, u);
  assert.deepEqual(selectBits(m, x, shape, [[2, 2, 2], [8, 8, 6]], 8, { heldOut: rank }).bits, [8, 8, 6]);
  // With AdaRound finalists: the uniform candidates and the 2 best under RTN are scored again.
  const ada = selectBits(m, x, shape, all, 8, { method: 'adaround', iters: 5, heldOut: rank, confirm });
  const rescored = ada.scores.filter((c) => c.lossMethod !== undefined);
  const byRtn = [...ada.scores].sort((a, b) => a.loss - b.loss).slice(0, 2).map((c) => c.bits.join());
  assert.deepEqual(new Set(rescored.map((c) => c.bits.join())), new Set([...byRtn, '4,4,4', '3,3,3']));
  assert.deepEqual(ada.uniform, rescored.filter((c) => uniform(c.bits)).reduce((a, b) => (b.lossMethod! < a.lossMethod! ? b : a)).bits);
});

test('selectBits with labeled held-out items scores the task loss: per-item cross-entropy and correctness, recomputed here', () => {
  const rng = new Rng(9);
  const m = mlp([64, 32, 32, 10], 7);
  const items = (n: number) => Float32Array.from({ length: n * 64 }, () => rng.uniform());
  const x = items(32), shape = [32, 64];
  const probs = (on: Float32Array, n: number) => noGrad(() => scope(() => Float32Array.from(softmax(m.call(fromValues(on, [n, 64])), 1).values())));
  const top = (v: Float32Array, r: number) => Array.from(v.subarray(r * 10, r * 10 + 10)).reduce((b, y, i, a) => (y > a[b]! ? i : b), 0);
  // Labels: the float model's class on 60 % of the items, a random class on the rest (so the task
  // loss and the closeness to the float model rank differently).
  const labeled = (n: number) => {
    const data = items(n), p = probs(data, n);
    return { data, shape: [n, 64], labels: Int32Array.from({ length: n }, (_, r) => (rng.uniform() < 0.6 ? top(p, r) : Math.floor(rng.uniform() * 10))) };
  };
  const rank = labeled(48), confirm = labeled(48);
  const task = (bits: number[], on: typeof rank) => {
    const restore = simulate(m, ptq(m, x, shape, { wBits: bits, aBits: 8 }));
    const q = probs(on.data, 48);
    restore();
    return Array.from(on.labels, (y, r) => ({ ce: -Math.log(q[r * 10 + y]!), correct: top(q, r) === y }));
  };
  const all = [[3, 3, 3], [4, 4, 4], [8, 3, 3], [3, 8, 8], [2, 8, 8]];
  const choice = selectBits(m, x, shape, all, 8, { heldOut: rank, confirm });
  assert.equal(choice.criterion, 'cross-entropy');
  const ceMean = (bits: number[]) => task(bits, rank).reduce((s, t) => s + t.ce, 0) / 48;
  for (const c of choice.scores) assert.ok(Math.abs(ceMean(c.bits) - c.loss) <= 1e-5 + 1e-3 * c.loss, `${c.bits}: cross-entropy ${ceMean(c.bits)} vs reported ${c.loss}`);
  const uniform = (b: number[]) => b.every((v) => v === b[0]);
  const least = (list: number[][]) => list.reduce((a, b) => (ceMean(b) < ceMean(a) ? b : a));
  const u = least(all.filter(uniform)), mix = least(all.filter((b) => !uniform(b)));
  assert.deepEqual([choice.uniform, choice.confirmation!.bits], [u, mix]);
  checkConfirmation(choice, mix, u, task(mix, confirm).map((t) => ({ loss: t.ce, hit: t.correct })), task(u, confirm).map((t) => ({ loss: t.ce, hit: t.correct })));
  // Labels split with the items when the confirmation items are the second half of heldOut.
  const both = { data: Float32Array.from([...rank.data, ...confirm.data]), shape: [96, 64], labels: Int32Array.from([...rank.labels, ...confirm.labels]) };
  assert.deepEqual(selectBits(m, x, shape, all, 8, { heldOut: both }).confirmation, choice.confirmation);
  assert.throws(() => selectBits(m, x, shape, all, 8, { heldOut: rank, confirm: { data: confirm.data, shape: confirm.shape } }), /labels for both/);
  assert.throws(() => selectBits(m, x, shape, all, 8, { heldOut: { ...rank, labels: rank.labels.subarray(1) }, confirm }), /47 labels for 48 items/);
});
