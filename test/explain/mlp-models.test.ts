// Explainers on plain-JS MLPs (black boxes to the explainer): a ReLU net has a zero Hessian almost
// everywhere, so SHEAR must fall back to finite differences; the estimators still converge to exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { Explainer, METHODS, methodSupported, absError, type BatchedModel, type PlayerGroup } from '../../src/explain/index.js';

/** A random 2-hidden-layer MLP in plain JS (float64), with `act` applied after each hidden layer. */
function jsMlp(width: number, hidden: number, seed: number, act: (z: number) => number): BatchedModel {
  const rng = new Rng(seed, 5);
  const layer = (i: number, o: number) => ({ w: Float64Array.from({ length: i * o }, () => rng.normal() * Math.sqrt(2 / i)), b: Float64Array.from({ length: o }, () => 0.1 * rng.normal()), i, o });
  const layers = [layer(width, hidden), layer(hidden, hidden), layer(hidden, 1)];
  return (batch, rows) => {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let h = batch.subarray(r * width, (r + 1) * width) as Float64Array;
      layers.forEach((l, k) => {
        const next = new Float64Array(l.o);
        for (let j = 0; j < l.o; j++) {
          let s = l.b[j]!;
          for (let i = 0; i < l.i; i++) s += l.w[j * l.i + i]! * h[i]!;
          next[j] = k < layers.length - 1 ? act(s) : s;
        }
        h = next;
      });
      out[r] = h[0]!;
    }
    return out;
  };
}

// 6 numeric columns and two one-hot blocks of 3: 8 players over 12 columns.
const groups: PlayerGroup[] = [
  ...Array.from({ length: 6 }, (_, c) => ({ name: `n${c}`, start: c, end: c + 1 })),
  { name: 'cat1', start: 6, end: 9 }, { name: 'cat2', start: 9, end: 12 },
];
function randomRow(rng: Rng): Float64Array {
  const x = Float64Array.from({ length: 12 }, (_, c) => (c < 6 ? rng.normal() : 0));
  x[6 + rng.int(3)] = 1;
  x[9 + rng.int(3)] = 1;
  return x;
}
const reference = Float64Array.from({ length: 12 }, (_, c) => (c < 6 ? 0 : 1 / 3));

for (const [name, act] of [['relu', (z: number) => Math.max(0, z)], ['softplus', (z: number) => Math.log1p(Math.exp(z))]] as const) {
  test(`${name} JS MLP: every method converges towards exact; SHEAR uses finite differences`, () => {
    const model = jsMlp(12, 16, name === 'relu' ? 1 : 2, act);
    const explainer = new Explainer(model, { reference, groups });
    const rng = new Rng(17);
    const errors: Record<string, [number, number]> = {};
    for (let row = 0; row < 8; row++) {
      const x = randomRow(rng);
      const exact = explainer.explain(x, { method: 'exact' });
      assert.equal(exact.evaluations, 256);
      for (const method of METHODS.filter((m) => m !== 'exact' && methodSupported(explainer.model, m))) {
        const small = explainer.explain(x, { method, budget: 8, seed: row });
        const large = explainer.explain(x, { method, budget: 128, seed: row });
        if (method === 'shear') assert.equal(small.crossContribution, 'finite-difference (others at reference)');
        const e = (errors[method] ??= [0, 0]);
        e[0] += absError(small.values, exact.values);
        e[1] += absError(large.values, exact.values);
      }
    }
    for (const [method, [small, large]] of Object.entries(errors)) {
      assert.ok(large < small, `${name} ${method}: error at 128/feature ${large} not below error at 8/feature ${small}`);
    }
    // With 8 players, budget 128 gives SHEAR K = 6 of 7 cooperators (one random player left): better
    // than plain permutation sampling. (At 8/feature random untrained nets are too interactive for
    // K = 2 to win; the trained-model comparison is the bench's job.)
    assert.ok(errors['shear']![1] < errors['permutation']![1], `shear ${errors['shear']![1]} vs permutation ${errors['permutation']![1]} at 128`);
  });
}
