// Every quantizer's forward and pseudo-gradient against closed forms written out here
// independently of src/quant/ops.ts (the registry gradcheck skips them: straightThrough).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromValues } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { grad } from '../../src/autograd/backward.js';
import { mul, sum } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';
import { getOp } from '../../src/ops/registry.js';
import fc from 'fast-check';
import { quantizer, quantizerNames, Quantizer, Pact, Lsq, EdeSign, DteSign, FourierSign, kthSmallest } from '../../src/quant/quantizers.js';

const rng = new Rng(5, 1);
// Includes exact zeros and exact clip points, where conventions matter.
const xs = [0, -0, 1, -1, 0.5, -0.5, 0.03, -0.03, 1.5, -2.5, ...Array.from({ length: 30 }, () => rng.normal() * 1.2)];
const gs = xs.map(() => rng.normal());
const sgn = (x: number) => (x >= 0 ? 1 : -1);
const rnd = (x: number) => (x < 0 ? -Math.round(-x) : Math.round(x));

/** Autograd gradient of sum(q(x)·g) wrt x, with the quantizer forward. */
function run(q: Quantizer, values = xs, shape = [values.length], dtype: 'float32' | 'float64' = 'float64') {
  return scope(() => {
    const x = fromValues(values, shape, dtype);
    x.requiresGrad = true;
    const y = q.forward(x);
    const [gx] = grad(sum(mul(y, fromValues(gs.slice(0, values.length), shape, dtype))), [x]);
    return { y: Array.from(y.values()), gx: Array.from(gx!.values()), pg: Array.from(q.pseudoGradient(x).values()) };
  });
}

function close(actual: number[], expected: number[], what: string, tol = 1e-9): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}] (x=${xs[i]}): ${a} vs ${expected[i]}`));
}

/** Checks forward, the pseudo-gradient, and that autograd applies exactly g·pseudo-gradient. */
function checkElementwise(q: Quantizer, fwd: (x: number) => number, d: (x: number) => number, values = xs): void {
  const r = run(q, values);
  close(r.y, values.map(fwd), `${q.name} forward`);
  close(r.pg, values.map(d), `${q.name} pseudo-gradient`);
  close(r.gx, values.map((x, i) => gs[i]! * d(x)), `${q.name} autograd gradient`);
}

test('ste_sign: sign(0) = +1, gradient 1[|x| <= clip]', () => {
  checkElementwise(quantizer('ste_sign'), sgn, (x) => (Math.abs(x) <= 1 ? 1 : 0));
  checkElementwise(quantizer({ name: 'ste_sign', clipValue: 0.5 }), sgn, (x) => (Math.abs(x) <= 0.5 ? 1 : 0));
  checkElementwise(quantizer({ name: 'ste_sign', clipValue: null }), sgn, () => 1);
});

test('approx_sign: gradient 2 - 2|x| inside [-1, 1]', () => {
  checkElementwise(quantizer('approx_sign'), sgn, (x) => (Math.abs(x) <= 1 ? 2 - 2 * Math.abs(x) : 0));
});

test('swish_sign: gradient is the derivative of 2σ(βx)(1 + βx(1 − σ(βx))) − 1', () => {
  const beta = 5;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const smooth = (x: number) => 2 * sig(beta * x) * (1 + beta * x * (1 - sig(beta * x))) - 1;
  // The closed form is checked against a central difference of the smooth function it differentiates.
  const numeric = (x: number) => (smooth(x + 1e-6) - smooth(x - 1e-6)) / 2e-6;
  const r = run(quantizer('swish_sign'));
  close(r.y, xs.map(sgn), 'swish_sign forward');
  close(r.pg, xs.map(numeric), 'swish_sign pseudo-gradient', 1e-5);
  const peak = run(quantizer('swish_sign'), [0]).pg[0]!;
  assert.ok(Math.abs(peak - beta) < 1e-12, `peak ${peak}: β·2/(1 + cosh 0) = β`);
});

test('ste_heaviside: {0, 1}, 1 only for x > 0', () => {
  checkElementwise(quantizer('ste_heaviside'), (x) => (x > 0 ? 1 : 0), (x) => (Math.abs(x) <= 1 ? 1 : 0));
});

test('ste_tern: fixed threshold and the TWN threshold 0.7·mean|W| with per-channel alpha', () => {
  checkElementwise(quantizer('ste_tern'), (x) => (x >= 0.05 ? 1 : x <= -0.05 ? -1 : 0), (x) => (Math.abs(x) <= 1 ? 1 : 0));
  const w = xs.slice(10, 30); // 20 values, shape [4, 5]: 4 output channels
  const delta = 0.7 * w.reduce((s, v) => s + Math.abs(v), 0) / w.length;
  const alpha = [0, 1, 2, 3].map((c) => {
    const big = w.slice(c * 5, c * 5 + 5).filter((v) => Math.abs(v) >= delta).map(Math.abs);
    return big.reduce((s, v) => s + v, 0) / big.length;
  });
  const q = quantizer({ name: 'ste_tern', ternaryWeightNetworks: true, scaled: true });
  const r = run(q, w, [4, 5]);
  const t = (x: number) => (x >= delta ? 1 : x <= -delta ? -1 : 0);
  close(r.y, w.map((x, i) => alpha[Math.floor(i / 5)]! * t(x)), 'twn forward');
  close(r.gx, w.map((x, i) => gs[i]! * alpha[Math.floor(i / 5)]! * (Math.abs(x) <= 1 ? 1 : 0)), 'twn gradient');
  assert.equal(q.precision, 2);
});

test('magnitude_aware_sign: alpha_c·sign(W), alpha_c = mean|W| per output channel (stop-gradient)', () => {
  const w = xs.slice(10, 34); // [3, 2, 4]: 3 channels of 8
  const alpha = [0, 1, 2].map((c) => w.slice(c * 8, c * 8 + 8).reduce((s, v) => s + Math.abs(v), 0) / 8);
  const r = run(quantizer('magnitude_aware_sign'), w, [3, 2, 4]);
  close(r.y, w.map((x, i) => alpha[Math.floor(i / 8)]! * sgn(x)), 'forward');
  close(r.gx, w.map((x, i) => gs[i]! * alpha[Math.floor(i / 8)]! * (Math.abs(x) <= 1 ? 1 : 0)), 'gradient');
});

test('ede_sign (IR-Net EDE): gradient k·t·(1 − tanh²(t·x)), t from 0.1 to 10 in log steps, k = max(1/t, 1)', () => {
  for (const [p, t] of [[0, 0.1], [0.5, 1], [1, 10]] as const) {
    const q = new EdeSign();
    q.setProgress(p);
    const k = Math.max(1 / t, 1);
    checkElementwise(q, sgn, (x) => k * t * (1 - Math.tanh(t * x) ** 2));
  }
});

test('dte_sign (DIR-Net DTE): stage 1 gradient 1[|x| ≤ w·σ] with w 3 → 1, stage 2 k·t·(1 − tanh²(t·x/σ)) with t 1 → 10', () => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sigma = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  for (const [p, stage, w, t] of [[0, 1, 3, 1], [0.25, 1, 2, 1], [0.5, 2, 1, 1], [0.75, 2, 1, Math.sqrt(10)], [1, 2, 1, 10]] as const) {
    const q = new DteSign();
    q.setProgress(p);
    const k = Math.max(1 / t, 1);
    checkElementwise(q, sgn, stage === 1 ? (x) => (Math.abs(x) <= w * sigma ? 1 : 0) : (x) => k * t * (1 - Math.tanh((t * x) / sigma) ** 2));
  }
  // σ follows the tensor: the same values scaled by 4 keep the same gradient pattern (stage 1).
  const q = new DteSign();
  checkElementwise(q, sgn, (x) => (Math.abs(x) <= 3 * 4 * sigma ? 1 : 0), xs.map((x) => 4 * x));
  assert.throws(() => new DteSign({ switchAt: 1 }), /switchAt must be in \(0, 1\)/);
});

test('irnet_weight (Libra-PB): per-filter balance + standardize, 2^round(log2 mean|ŵ|) scale, EDE gradient / std', () => {
  const w = xs.slice(10, 34), inner = 8; // [3, 2, 4]
  const q = quantizer('irnet_weight') as EdeSign;
  q.setProgress(0.5); // t = 1, k = 1
  const stats = [0, 1, 2].map((c) => {
    const v = w.slice(c * inner, (c + 1) * inner), m = v.reduce((a, b) => a + b, 0) / inner;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (inner - 1));
    const scale = 2 ** Math.round(Math.log2(v.reduce((a, b) => a + Math.abs((b - m) / sd), 0) / inner));
    return { m, sd, scale };
  });
  const r = run(q, w, [3, 2, 4]);
  const at = (i: number) => stats[Math.floor(i / inner)]!;
  close(r.y, w.map((x, i) => at(i).scale * sgn((x - at(i).m) / at(i).sd)), 'forward');
  const d = (x: number, i: number) => at(i).scale * (1 - Math.tanh((x - at(i).m) / at(i).sd) ** 2) / at(i).sd;
  close(r.pg, w.map(d), 'pseudo-gradient');
  close(r.gx, w.map((x, i) => gs[i]! * d(x, i)), 'gradient');
  // Deployment packs the signs of the balanced weights with the power-of-two scale.
  const dep = q.deployment();
  scope(() => {
    const wt = fromValues(w, [3, 2, 4], 'float64');
    assert.deepEqual(Array.from(dep.latent!(wt).values(), sgn), w.map((x, i) => sgn(x - at(i).m)));
    assert.deepEqual(Array.from(dep.channelScale!(wt)!.values()), stats.map((s) => s.scale));
  });
});

test('fda_sign (FDA-BNN): gradient (4ω/π)·Σ_{i<n} cos((2i+1)ωx) inside |x| ≤ 1, n from 9 to 18', () => {
  const fourier = (x: number, n: number) => {
    if (Math.abs(x) > 1) return 0;
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.cos((2 * i + 1) * 0.1 * x);
    return (0.4 / Math.PI) * s;
  };
  for (const [p, n] of [[0, 9], [1, 18]] as const) {
    const q = new FourierSign();
    q.setProgress(p);
    checkElementwise(q, sgn, (x) => fourier(x, n));
  }
  // The truncated series is the derivative of the truncated sine series of sign (central difference).
  const series = (x: number) => (4 / Math.PI) * Array.from({ length: 9 }, (_, i) => Math.sin((2 * i + 1) * 0.1 * x) / (2 * i + 1)).reduce((a, b) => a + b, 0);
  for (const x of [0, 0.3, -0.7]) assert.ok(Math.abs((series(x + 1e-6) - series(x - 1e-6)) / 2e-6 - fourier(x, 9)) < 1e-6);
  const w = xs.slice(10, 34);
  const alpha = [0, 1, 2].map((c) => w.slice(c * 8, c * 8 + 8).reduce((s, v) => s + Math.abs(v), 0) / 8);
  const r = run(new FourierSign({ scaled: true }), w, [3, 2, 4]);
  close(r.y, w.map((x, i) => alpha[Math.floor(i / 8)]! * sgn(x)), 'scaled forward');
  close(r.gx, w.map((x, i) => gs[i]! * alpha[Math.floor(i / 8)]! * fourier(x, 9)), 'scaled gradient');
});

test('dorefa: activations and weights (k = 2, 3)', () => {
  for (const k of [2, 3]) {
    const n = 2 ** k - 1;
    checkElementwise(quantizer({ name: 'dorefa', kBit: k }), (x) => rnd(Math.min(1, Math.max(0, x)) * n) / n, (x) => (x >= 0 && x <= 1 ? 1 : 0));
    const m = Math.max(...xs.map((x) => Math.abs(Math.tanh(x))));
    checkElementwise(
      quantizer({ name: 'dorefa', kBit: k, mode: 'weights' }),
      (x) => (2 * rnd((Math.tanh(x) / (2 * m) + 0.5) * n)) / n - 1,
      (x) => (1 - Math.tanh(x) ** 2) / m,
    );
  }
  const levels = new Set(run(quantizer({ name: 'dorefa', kBit: 2, mode: 'weights' })).y.map((v) => v.toFixed(6)));
  assert.ok(levels.size <= 4, `2-bit weights take at most 4 values, got ${[...levels]}`);
});

test('pact: clip to [0, alpha], k-bit levels, gradients to x and alpha', () => {
  const q = new Pact({ bits: 3, alpha: 1.2 });
  const a = 1.2, n = 7;
  const r = run(q, xs, [xs.length], 'float32');
  close(r.y, xs.map((x) => (rnd((Math.min(a, Math.max(0, x)) * n) / a) * a) / n), 'pact forward', 1e-6);
  close(r.gx, xs.map((x, i) => gs[i]! * (x >= 0 && x < a ? 1 : 0)), 'pact dx', 1e-6);
  const ga = scope(() => {
    const x = fromValues(xs, [xs.length]);
    const [g] = grad(sum(mul(q.forward(x), fromValues(gs, [xs.length]))), [q.alpha]);
    return g!.item();
  });
  const expected = xs.reduce((s, x, i) => s + (x >= a ? gs[i]! : 0), 0);
  assert.ok(Math.abs(ga - expected) < 1e-5, `dalpha ${ga} vs ${expected}`);
});

test('lsq: signed 4-bit, gradient to v and to the step with scale 1/sqrt(N·Q_P)', () => {
  const q = new Lsq({ bits: 4, step: 0.3 });
  const s = 0.3, qn = 8, qp = 7;
  const r = run(q, xs, [xs.length], 'float32');
  close(r.y, xs.map((v) => rnd(Math.min(qp, Math.max(-qn, v / s))) * s), 'lsq forward', 1e-6);
  close(r.gx, xs.map((v, i) => gs[i]! * (v / s > -qn && v / s < qp ? 1 : 0)), 'lsq dv', 1e-6);
  const gsStep = scope(() => {
    const x = fromValues(xs, [xs.length]);
    const [g] = grad(sum(mul(q.forward(x), fromValues(gs, [xs.length]))), [q.step]);
    return g!.item();
  });
  const local = (v: number) => (v / s <= -qn ? -qn : v / s >= qp ? qp : rnd(v / s) - v / s);
  const expected = xs.reduce((acc, v, i) => acc + gs[i]! * local(v), 0) / Math.sqrt(xs.length * qp);
  assert.ok(Math.abs(gsStep - expected) < 1e-5, `dstep ${gsStep} vs ${expected}`);
  // Unset step: initialised from the first batch as 2·mean|v|/sqrt(Q_P).
  const fresh = new Lsq({ bits: 8 });
  scope(() => fresh.forward(fromValues(xs, [xs.length])));
  const init = (2 * xs.reduce((a, v) => a + Math.abs(v), 0)) / xs.length / Math.sqrt(127);
  assert.ok(Math.abs(fresh.step.item() - init) < 1e-6);
});

test('quantizers are addressable by name and round-trip through JSON config', () => {
  assert.deepEqual(quantizerNames.sort(), ['approx_sign', 'dorefa', 'dte_sign', 'ede_sign', 'fda_sign', 'hq_tern', 'irnet_weight', 'lsq', 'magnitude_aware_sign', 'nested', 'pact', 'pruned_tern', 'sbnn_weight', 'smartdeal', 'ste_heaviside', 'ste_sign', 'ste_tern', 'swish_sign', 'ttq']);
  for (const name of quantizerNames) {
    const q = quantizer(name);
    const again = quantizer(JSON.parse(JSON.stringify(q.config())));
    assert.deepEqual(again.config(), q.config());
    assert.equal(again.precision, q.precision);
  }
  assert.throws(() => quantizer('sign_of_the_times'), /unknown quantizer 'sign_of_the_times'/);
  assert.throws(() => quantizer({ name: 'dorefa', kBit: 0 }), /dorefa: kBit/);
});

test('fake_quant is flagged straight-through so finite differences skip it explicitly', () => {
  assert.equal(getOp('fake_quant').straightThrough, true);
  assert.equal(getOp('fake_quant_grad').backward, undefined);
});


test('withConstraints(…, totalSteps) moves scheduled quantizers from progress 0 to 1 over training', async () => {
  const { applyQuantPreset, withConstraints } = await import('../../src/quant/models.js');
  const { Adam } = await import('../../src/optim/optimizer.js');
  const { isQuantLayer } = await import('../../src/quant/layers.js');
  const model = applyQuantPreset('lenet', 'irnet', 0);
  const optimizer = withConstraints(new Adam(model.parameters(), { lr: 1e-3 }), model, 3);
  const progress = () => [...model.namedModules()].flatMap(([, m]) => (isQuantLayer(m) ? [(m.inputQuantizer as EdeSign).progress] : []));
  assert.deepEqual(new Set(progress()), new Set([0]));
  optimizer.step();
  assert.deepEqual(new Set(progress()), new Set([0.5]));
  optimizer.step();
  assert.deepEqual(new Set(progress()), new Set([1]));
  optimizer.dispose();
  model.dispose();
});

test('fda_sign noise adaptation: (sign(x) + c·e(x))·α with e(x) = W₂·relu(W₁·x) + 0.1·sin(x) per filter, c = 0.05(1 + cos πp); exact gradient; binary at p = 1', () => {
  const rows = 3, d = 8, w = xs.slice(10, 10 + rows * d), g = gs.slice(0, rows * d);
  const q = new FourierSign({ scaled: true, noise: true });
  let seed = 3;
  q.bind('kernel', d, () => seed++);
  const [w1, w2] = q.parameters().map((t) => Array.from(t.values()));
  assert.deepEqual([q.parameters()[0]!.shape, q.parameters()[1]!.shape], [[1, d], [d, 1]]);
  const fourier = (x: number, n: number) => (Math.abs(x) > 1 ? 0 : (0.4 / Math.PI) * Array.from({ length: n }, (_, i) => Math.cos((2 * i + 1) * 0.1 * x)).reduce((a, b) => a + b, 0));
  for (const p of [0.5, 1]) {
    q.setProgress(p);
    const c = 0.05 * (1 + Math.cos(Math.PI * p)), n = Math.round(9 + 9 * p);
    const r = run(q, w, [rows, d]);
    for (let o = 0; o < rows; o++) {
      const x = w.slice(o * d, o * d + d), gr = g.slice(o * d, o * d + d);
      const alpha = x.reduce((a, v) => a + Math.abs(v), 0) / d;
      const z = x.reduce((a, v, j) => a + w1[j]! * v, 0), hidden = Math.max(0, z);
      // W₂ᵀg through the ReLU, then W₁ᵀ.
      const back = z > 0 ? gr.reduce((a, gv, j) => a + w2[j]! * gv, 0) : 0;
      x.forEach((v, j) => {
        const e = w2[j]! * hidden + 0.1 * Math.sin(v);
        assert.ok(Math.abs(r.y[o * d + j]! - alpha * (sgn(v) + c * e)) < 1e-9, `forward at p=${p}`);
        const dx = alpha * (gr[j]! * fourier(v, n) + c * (w1[j]! * back + 0.1 * Math.cos(v) * gr[j]!));
        assert.ok(Math.abs(r.gx[o * d + j]! - dx) < 1e-9, `gradient at p=${p}: ${r.gx[o * d + j]} vs ${dx}`);
      });
    }
  }
  // Activations of a conv: per position across the channels (1x1 convolutions), here 2 positions of 3 channels.
  const qa = new FourierSign({ noise: true });
  qa.bind('input', 3, () => 11);
  const [a1, a2] = qa.parameters().map((t) => Array.from(t.values()));
  const v = [0.3, -0.2, 0.5, 0.1, 0.4, -0.6]; // [1, 3, 1, 2]: channel c at position p is v[2c + p]
  const e = scope(() => Array.from(qa.noiseTerm(fromValues(v, [1, 3, 1, 2], 'float64')).values()));
  for (let pos = 0; pos < 2; pos++) {
    const hidden = Math.max(0, [0, 1, 2].reduce((acc, c) => acc + a1[c]! * v[2 * c + pos]!, 0));
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(e[2 * c + pos]! - (a2[c]! * hidden + 0.1 * Math.sin(v[2 * c + pos]!))) < 1e-9, `activation noise term [${c}, ${pos}]`);
  }
  assert.throws(() => new FourierSign({ noise: true }).noiseTerm(fromValues([1], [1, 1])), /not bound to a layer/);
});

test('kthSmallest (quickselect) is the sorted array\'s element k, NaN last, ties and ±0 included', () => {
  const value = fc.oneof(fc.double(), fc.constantFrom(0, -0, 1, -1, NaN, Infinity), fc.integer({ min: -3, max: 3 }));
  fc.assert(
    fc.property(fc.array(value, { maxLength: 60 }), fc.nat(), (vs, k) => {
      const sorted = Float64Array.from(vs).sort();
      const want = sorted[k % Math.max(1, vs.length)];
      const got = kthSmallest(Float64Array.from(vs), k % Math.max(1, vs.length));
      assert.ok(Object.is(got, want) || (got === 0 && want === 0), `k ${k} of ${vs}: got ${got}, want ${want}`);
    }),
    { numRuns: 300 },
  );
});

test('kthSmallest with a guess (`near`: last step\'s threshold) gives the same value, the guess right, close or wrong', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), fc.constantFrom(0, 1, 0.5, NaN, Infinity)), { minLength: 1, maxLength: 200 }), fc.nat(), fc.double({ min: 0.8, max: 1.25, noNaN: true }), (vs, k0, drift) => {
      const k = k0 % vs.length, want = Float32Array.from(vs).sort()[k];
      // The exact answer, one moved a little (the band holds it or not), and guesses that cannot help.
      for (const near of [want, (want ?? 1) * drift, (want ?? 1) * (1 + 1 / 16), -1, 0, NaN, Infinity, 1e-300]) {
        const got = kthSmallest(Float32Array.from(vs), k, near);
        assert.ok(Object.is(got, want), `k ${k} near ${near}: got ${got}, want ${want}`);
      }
    }),
    { numRuns: 300 },
  );
});
