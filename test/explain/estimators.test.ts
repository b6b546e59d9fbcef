import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import {
  BudgetError, Explainer, FunctionGame, METHODS, controlVariateShapley, methodSupported, tripleCount, ModelGame, absError, exactShapley, faithfulnessCurve, finiteDifferenceEta,
  hessianEta, kernelShapley, permutationShapley, playerDirections, randomCooperators, rankAccuracy, selectCooperators, shearAntitheticShapley,
  shearShapley, type BatchedModel,
} from '../../src/explain/index.js';

const maskKey = (mask: Uint8Array): number => mask.reduce((k, b, p) => k | (b << p), 0);

/** Random game with arbitrary (all-order) interactions: a value table over bitmasks. */
function randomTableGame(m: number, seed: number): FunctionGame {
  const rng = new Rng(seed, 1);
  const table = Float64Array.from({ length: 2 ** m }, () => rng.normal());
  return new FunctionGame(m, (mask) => table[maskKey(mask)]!);
}

/** Independent oracle: Shapley by averaging marginal contributions over ALL M! orders. */
function bruteForceByPermutations(game: FunctionGame): Float64Array {
  const m = game.players;
  const phi = new Float64Array(m);
  let count = 0;
  const value = (set: number[]) => { const mask = new Uint8Array(m); for (const p of set) mask[p] = 1; return game.values(mask, 1)[0]!; };
  const walk = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) {
      count++;
      for (let k = 0; k < m; k++) phi[prefix[k]!]! += value(prefix.slice(0, k + 1)) - value(prefix.slice(0, k));
      return;
    }
    rest.forEach((p, i) => walk([...prefix, p], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  walk([], Array.from({ length: m }, (_, i) => i));
  return phi.map((v) => v / count);
}

const full = (m: number) => new Uint8Array(m).fill(1);

test('exact matches brute force over all orders to 1e-9 on random games, and is efficient', () => {
  for (const m of [1, 2, 3, 4, 5, 6]) {
    for (let seed = 0; seed < 3; seed++) {
      const game = randomTableGame(m, seed * 10 + m);
      const phi = exactShapley(game);
      const oracle = bruteForceByPermutations(game);
      for (let i = 0; i < m; i++) assert.ok(Math.abs(phi[i]! - oracle[i]!) < 1e-9, `m=${m} seed=${seed} player ${i}: ${phi[i]} vs ${oracle[i]}`);
      const total = phi.reduce((a, b) => a + b, 0);
      const gap = game.values(full(m), 1)[0]! - game.values(new Uint8Array(m), 1)[0]!;
      assert.ok(Math.abs(total - gap) < 1e-9, `efficiency m=${m}`);
    }
  }
});

test('exact is efficient for 12 players (batched in chunks)', () => {
  const game = randomTableGame(12, 7);
  const phi = exactShapley(game, 20, 500);
  const gap = game.values(full(12), 1)[0]! - game.values(new Uint8Array(12), 1)[0]!;
  assert.ok(Math.abs(phi.reduce((a, b) => a + b, 0) - gap) < 1e-9);
  assert.throws(() => exactShapley(randomTableGame(5, 1), 4), (e: Error) => e instanceof BudgetError && /exact: 5 players need 2\^5/.test(e.message));
});

// Linear model with grouped columns: players = blocks [0,1), [1,4) (a "one-hot" block), [4,5), [5,7).
const width = 7;
const weights = Float64Array.from([0.5, -1, 2, 0.25, 3, -0.7, 1.1]);
const groups = [{ name: 'a', start: 0, end: 1 }, { name: 'b', start: 1, end: 4 }, { name: 'c', start: 4, end: 5 }, { name: 'd', start: 5, end: 7 }];
const linear: BatchedModel = (batch, rows) => {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) { let s = 0.3; for (let c = 0; c < width; c++) s += weights[c]! * batch[r * width + c]!; out[r] = s; }
  return out;
};
const x = Float64Array.from([1, 0, 1, 0, -2, 0.5, 3]);
const ref = Float64Array.from([0.2, 0.3, 0.3, 0.4, 0, 1, -1]);
const linearPhi = groups.map((g) => { let s = 0; for (let c = g.start; c < g.end; c++) s += weights[c]! * (x[c]! - ref[c]!); return s; });

test('linear model: every method gives phi = w (x - r) per block exactly, at every budget', () => {
  const explainer = new Explainer(linear, { reference: ref, groups });
  // A plain function has no derivatives: shear-cv refuses it with a clear error (tested below).
  for (const method of METHODS.filter((mt) => methodSupported(explainer.model, mt))) {
    for (const budget of [2, 4, 8, 64]) {
      // 2 per feature = 6 kernel samples for 4 players: the regression may be singular by chance (a BudgetError).
      if ((method.startsWith('kernel') || method === 'shear-antithetic') && budget < 4) continue;
      const e = explainer.explain(x, { method, budget, seed: 3 });
      assert.deepEqual(e.players, ['a', 'b', 'c', 'd']);
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(e.values[i]! - linearPhi[i]!) < 1e-9, `${method} budget ${budget} player ${i}: ${e.values[i]} vs ${linearPhi[i]}`);
      if (method !== 'exact') assert.ok(e.evaluations <= budget * 4 + e.selectionEvaluations, `${method} used ${e.evaluations} evaluations for budget ${budget}`);
    }
  }
});

test('background game: linear model gives w (x - mean background); model rows = evaluations x background rows', () => {
  const bg = Float64Array.from([...ref, ...ref.map((v) => v + 1), ...ref.map((v) => v - 3)]);
  const explainer = new Explainer({ inputSize: width, predict: linear }, { background: bg, groups });
  const e = explainer.explain(x, { method: 'exact' });
  const meanShift = (1 - 3) / 3;
  groups.forEach((g, i) => {
    let s = 0; for (let c = g.start; c < g.end; c++) s += weights[c]! * (x[c]! - ref[c]! - meanShift);
    assert.ok(Math.abs(e.values[i]! - s) < 1e-9);
  });
  assert.equal(e.modelRows, e.evaluations * 3);
  assert.equal(e.evaluations, 16);
});

test('pure interaction games: closed forms; antithetic exact after one pair for pairwise games', () => {
  // v(S) = [0 in S and 1 in S]: phi = (1/2, 1/2, 0).
  const and = new FunctionGame(3, (mk) => mk[0]! * mk[1]!);
  assert.deepEqual(Array.from(exactShapley(and)), [0.5, 0.5, 0]);
  // v(S) = [0,1,2 all in S] among 4 players: 1/3 each for the three.
  const triple = new FunctionGame(4, (mk) => mk[0]! * mk[1]! * mk[2]!);
  exactShapley(triple).forEach((v, i) => assert.ok(Math.abs(v - (i < 3 ? 1 / 3 : 0)) < 1e-12));
  // Pairwise game: v(S) = sum_i a_i [i in S] + sum_{i<j} b_ij [i,j in S].
  const m = 6, rng = new Rng(5);
  const a = Float64Array.from({ length: m }, () => rng.normal());
  const b = Float64Array.from({ length: m * m }, () => rng.normal());
  const pairwise = new FunctionGame(m, (mk) => {
    let s = 0;
    for (let i = 0; i < m; i++) { s += a[i]! * mk[i]!; for (let j = i + 1; j < m; j++) s += b[i * m + j]! * mk[i]! * mk[j]!; }
    return s;
  });
  const exact = exactShapley(pairwise);
  for (let seed = 0; seed < 5; seed++) {
    // Budget 2 with 6 players buys exactly 2 permutations: one forward/reverse pair.
    const phi = permutationShapley(pairwise, 2, new Rng(seed), true);
    assert.ok(absError(phi, exact) < 1e-9, `antithetic pair exact on pairwise game, seed ${seed}`);
  }
  assert.throws(() => permutationShapley(pairwise, 1, new Rng(0), true), /antithetic: budget 1 per feature buys 0 permutation\(s\) of 6 players; need 2 \(budget ≥ 2\)/);
});

/** Mean and standard error of an estimator over seeds, per player. */
function overSeeds(seeds: number, m: number, run: (rng: Rng) => Float64Array): { mean: Float64Array; se: Float64Array } {
  const sum = new Float64Array(m), sq = new Float64Array(m);
  for (let s = 0; s < seeds; s++) {
    const phi = run(new Rng(1000 + s, 9));
    for (let i = 0; i < m; i++) { sum[i]! += phi[i]!; sq[i]! += phi[i]! ** 2; }
  }
  const mean = sum.map((v) => v / seeds);
  const se = sq.map((v, i) => Math.sqrt(Math.max(0, v / seeds - mean[i]! ** 2) / seeds));
  return { mean, se };
}

test('permutation and antithetic are unbiased (mean over 3000 seeds within 5 standard errors of exact)', () => {
  const game = randomTableGame(5, 42);
  const exact = exactShapley(game);
  for (const antithetic of [false, true]) {
    const { mean, se } = overSeeds(3000, 5, (rng) => permutationShapley(game, 2, rng, antithetic));
    for (let i = 0; i < 5; i++) {
      assert.ok(se[i]! > 0, 'the estimator varies (the test can fail)');
      assert.ok(Math.abs(mean[i]! - exact[i]!) < 5 * se[i]! + 1e-12, `${antithetic ? 'antithetic' : 'permutation'} player ${i}: mean ${mean[i]} exact ${exact[i]} se ${se[i]}`);
    }
  }
});

test('shear-antithetic is unbiased for any cooperators (mean over 3000 seeds within 5 standard errors), where SHEAR is not', () => {
  const m = 6;
  const game = randomTableGame(m, 21);
  const exact = exactShapley(game);
  const coop = randomCooperators(m, 2, new Rng(3));
  for (const rounds of [1, 2]) {
    const { mean, se } = overSeeds(3000, m, (rng) => shearAntitheticShapley(game, coop, rng, rounds));
    for (let i = 0; i < m; i++) {
      assert.ok(se[i]! > 0, 'the estimator varies (the test can fail)');
      assert.ok(Math.abs(mean[i]! - exact[i]!) < 5 * se[i]! + 1e-12, `rounds ${rounds} player ${i}: mean ${mean[i]} exact ${exact[i]} se ${se[i]}`);
    }
  }
  // No cooperators: rounds pair up (R, complement of R); still unbiased.
  const none = Array.from({ length: m }, () => new Int32Array(0));
  const { mean, se } = overSeeds(3000, m, (rng) => shearAntitheticShapley(game, none, rng, 2));
  for (let i = 0; i < m; i++) assert.ok(Math.abs(mean[i]! - exact[i]!) < 5 * se[i]! + 1e-12, `K = 0 player ${i}`);
  // SHEAR's fair-coin non-cooperators are biased on this game (a control: the check above can tell).
  const shear = overSeeds(3000, m, (rng) => shearShapley(game, coop, rng));
  assert.ok(shear.mean.some((v, i) => Math.abs(v - exact[i]!) > 5 * shear.se[i]! + 1e-12), 'SHEAR detected as biased');
  assert.throws(() => shearAntitheticShapley(game, none, new Rng(0), 1), /rounds must be a positive integer, even without cooperators/);
});

test('shear-antithetic is exact on pairwise games for any cooperators and on interactions inside {i} and its cooperators', () => {
  const m = 7;
  const pairwise = ringGame(m, 9);
  const exact = exactShapley(pairwise);
  for (let seed = 0; seed < 5; seed++) {
    const coop = randomCooperators(m, 2, new Rng(seed, 5));
    assert.ok(absError(shearAntitheticShapley(pairwise, coop, new Rng(seed)), exact) < 1e-9, `pairwise, seed ${seed}`);
  }
  // A triple interaction among {0,1,2}: exact once 0, 1, 2 cooperate with each other, not otherwise.
  const triple = new FunctionGame(m, (mk) => mk[0]! * mk[1]! * mk[2]! + 0.5 * mk[3]! * mk[4]!);
  const exactTriple = exactShapley(triple);
  const coop = Array.from({ length: m }, (_, i) => Int32Array.from(i < 3 ? [0, 1, 2].filter((j) => j !== i) : [(i + 1) % m, (i + 2) % m]));
  let misses = 0;
  for (let seed = 0; seed < 5; seed++) {
    const phi = shearAntitheticShapley(triple, coop, new Rng(seed));
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(phi[i]! - exactTriple[i]!) < 1e-12, `triple member ${i}, seed ${seed}`);
    const far = shearAntitheticShapley(triple, Array.from({ length: m }, (_, i) => Int32Array.from([(i + 3) % m, (i + 4) % m])), new Rng(seed));
    if (Math.abs(far[0]! - exactTriple[0]!) > 1e-6) misses++;
  }
  assert.ok(misses > 0, 'without the right cooperators the triple is sampled, not exact');
});

/** Third-order Harsanyi dividends d_ijk = Σ_{U ⊆ ijk} (−1)^{3−|U|} v(U) of a game, packed i < j < k. */
function thirdOrderDividends(game: FunctionGame): Float64Array {
  const m = game.players;
  const v = (set: number[]) => { const mask = new Uint8Array(m); for (const p of set) mask[p] = 1; return game.values(mask, 1)[0]!; };
  const out = new Float64Array(tripleCount(m));
  let t = 0;
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) for (let k = j + 1; k < m; k++, t++) {
    out[t] = v([i, j, k]) - v([i, j]) - v([i, k]) - v([j, k]) + v([i]) + v([j]) + v([k]) - v([]);
  }
  return out;
}

test('shear-cv: exact on games of interaction order <= 3 given their third-order dividends; with any coefficients unbiased and efficient', () => {
  // Game with random additive, pairwise and third-order terms (dividends), 7 players.
  const m = 7, rng = new Rng(21);
  const d1 = Float64Array.from({ length: m }, () => rng.normal());
  const d2 = Float64Array.from({ length: m * m }, () => rng.normal());
  const d3 = Float64Array.from({ length: m * m * m }, () => rng.normal());
  const cubic = new FunctionGame(m, (mk) => {
    let s = 0;
    for (let i = 0; i < m; i++) {
      if (!mk[i]) continue;
      s += d1[i]!;
      for (let j = i + 1; j < m; j++) {
        if (!mk[j]) continue;
        s += d2[i * m + j]!;
        for (let k = j + 1; k < m; k++) if (mk[k]) s += d3[(i * m + j) * m + k]!;
      }
    }
    return s;
  });
  const exact = exactShapley(cubic);
  const dividends = thirdOrderDividends(cubic);
  for (let seed = 0; seed < 5; seed++) {
    // Budget 2 with 7 players: one forward/reverse pair. Plain antithetic is not exact here; with the
    // dividends as control variate every seed is.
    const anti = permutationShapley(cubic, 2, new Rng(seed), true);
    assert.ok(absError(anti, exact) > 1e-3, `antithetic alone is not exact on a cubic game (seed ${seed})`);
    const cv = controlVariateShapley(cubic, 2, new Rng(seed), dividends);
    assert.ok(absError(cv, exact) < 1e-9, `shear-cv exact on a cubic game, seed ${seed}: ${absError(cv, exact)}`);
  }
  // Zero coefficients: the antithetic estimate on the same orders, bit for bit.
  assert.deepEqual(controlVariateShapley(cubic, 8, new Rng(4), new Float64Array(tripleCount(m))), permutationShapley(cubic, 8, new Rng(4), true));
  // Arbitrary (wrong) coefficients on an all-order random game: unbiased, and Σφ̂ = v(F) − v(∅) per draw.
  const game = randomTableGame(5, 7);
  const exact5 = exactShapley(game);
  const wrong = Float64Array.from({ length: tripleCount(5) }, () => 3 * rng.normal());
  const span = game.values(full(5), 1)[0]! - game.values(new Uint8Array(5), 1)[0]!;
  const { mean, se } = overSeeds(3000, 5, (r) => {
    const phi = controlVariateShapley(game, 2, r, wrong);
    assert.ok(Math.abs(phi.reduce((a, b) => a + b, 0) - span) < 1e-9, 'efficiency');
    return phi;
  });
  for (let i = 0; i < 5; i++) {
    assert.ok(se[i]! > 0, 'the estimator varies (the test can fail)');
    assert.ok(Math.abs(mean[i]! - exact5[i]!) < 5 * se[i]! + 1e-12, `shear-cv player ${i}: mean ${mean[i]} exact ${exact5[i]} se ${se[i]}`);
  }
  assert.throws(() => controlVariateShapley(game, 2, new Rng(0), new Float64Array(3)), /shear-cv: 5 players have 10 triples, got 3 interaction values/);
  assert.throws(() => controlVariateShapley(game, 2, new Rng(0), new Float64Array(10).fill(NaN)), /third-order interaction 0 is not finite/);
  assert.throws(() => new Explainer(linear, { reference: ref, groups }).explain(x, { method: 'shear-cv', budget: 8 }), /shear-cv: the model has no thirdOrderInteractions/);
});

test('KernelSHAP (plain and paired) is consistent: error shrinks with budget, efficiency holds exactly', () => {
  const game = randomTableGame(6, 11);
  const exact = exactShapley(game);
  const gap = game.values(full(6), 1)[0]! - game.values(new Uint8Array(6), 1)[0]!;
  for (const paired of [false, true]) {
    const meanError = (budget: number) => {
      let e = 0;
      for (let s = 0; s < 40; s++) {
        const phi = kernelShapley(game, budget, new Rng(s, 3), paired);
        assert.ok(Math.abs(phi.reduce((a, b) => a + b, 0) - gap) < 1e-9, 'efficiency enforced');
        e += absError(phi, exact);
      }
      return e / 40;
    };
    const small = meanError(8), large = meanError(256);
    assert.ok(large < small / 4, `${paired ? 'paired' : 'plain'} kernel: error ${small} at 8/feature, ${large} at 256/feature`);
  }
  assert.throws(() => kernelShapley(game, 0, new Rng(0)), /kernel: budget must be a positive integer/);
});

/** Ring game: main effects and pairs (i, i+1). */
function ringGame(m: number, seed: number): FunctionGame {
  const rng = new Rng(seed);
  const a = Float64Array.from({ length: m }, () => rng.normal());
  const b = Float64Array.from({ length: m }, () => 2 + rng.uniform());
  return new FunctionGame(m, (mk) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += a[i]! * mk[i]! + b[i]! * mk[i]! * mk[(i + 1) % m]!;
    return s;
  });
}

test('SHEAR: exact on pairwise games (antithetic non-cooperators); selects interacting partners; beats random cooperators', () => {
  const m = 8;
  const pairwise = ringGame(m, 2);
  const exact = exactShapley(pairwise);
  const eta = finiteDifferenceEta(pairwise);
  assert.equal(pairwise.evaluations, 2 ** m + 1 + m + (m * (m - 1)) / 2);
  const coop = selectCooperators(eta, m, 2);
  for (let i = 0; i < m; i++) assert.deepEqual([...coop[i]!].sort(), [(i + m - 1) % m, (i + 1) % m].sort());
  for (let seed = 0; seed < 5; seed++) assert.ok(absError(shearShapley(pairwise, coop, new Rng(seed)), exact) < 1e-9);
  // Clusters {0,1,2}, {3,4,5}, {6,7,8} with pair and triple terms inside: at budget 8 (K = 2) the
  // selected cooperators are the cluster, so SHEAR is exact; random cooperators are not.
  const rng = new Rng(4);
  const coef = Float64Array.from({ length: 27 }, () => 1 + rng.uniform());
  const clusters = new FunctionGame(9, (mk) => {
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const [p, q, r] = [mk[3 * c]!, mk[3 * c + 1]!, mk[3 * c + 2]!];
      s += coef[9 * c]! * p + coef[9 * c + 1]! * q + coef[9 * c + 2]! * r + coef[9 * c + 3]! * p * q + coef[9 * c + 4]! * q * r + coef[9 * c + 5]! * p * r - 4 * coef[9 * c + 6]! * p * q * r;
    }
    return s;
  });
  const exactClusters = exactShapley(clusters);
  const explainer = new Explainer((batch, rows) => clusters.values(Uint8Array.from(batch, (v) => v), rows), { reference: new Float64Array(9) });
  const ones = new Float64Array(9).fill(1);
  let randomErr = 0;
  for (let seed = 0; seed < 10; seed++) {
    const e = explainer.explain(ones, { method: 'shear', budget: 8, seed });
    assert.match(e.crossContribution!, /finite-difference/);
    assert.equal(e.selectionEvaluations, 1 + 9 + 36);
    assert.equal(e.evaluations - e.selectionEvaluations, 8 * 9);
    assert.ok(absError(e.values, exactClusters) < 1e-9, `SHEAR exact on clustered game, seed ${seed}`);
    randomErr += absError(explainer.explain(ones, { method: 'shear-random', budget: 8, seed }).values, exactClusters);
  }
  assert.ok(randomErr > 1, `random cooperators error ${randomErr}`);
});

test('Hessian cross-contribution (from Hessian-vector products) equals the finite-difference one on quadratic models, one-hot blocks included', () => {
  const w = 7, rng = new Rng(8);
  const q = new Float64Array(w * w);
  for (let i = 0; i < w; i++) for (let j = 0; j <= i; j++) q[i * w + j] = q[j * w + i] = rng.normal();
  const quad: BatchedModel = (batch, rows) => Float64Array.from({ length: rows }, (_, r) => {
    let s = 0;
    for (let i = 0; i < w; i++) for (let j = 0; j < w; j++) s += 0.5 * q[i * w + j]! * batch[r * w + i]! * batch[r * w + j]!;
    return s;
  });
  const hvp = (_x: Float64Array, dirs: Float64Array, count: number) => {
    const out = new Float64Array(count * w);
    for (let k = 0; k < count; k++) for (let a = 0; a < w; a++) for (let b = 0; b < w; b++) out[k * w + a]! += q[a * w + b]! * dirs[k * w + b]!;
    return out;
  };
  const xq = Float64Array.from({ length: w }, () => rng.normal()), rq = Float64Array.from({ length: w }, () => rng.normal());
  // Exact for quadratics: v({i,j}) − v({i}) − v({j}) + v(∅) = Δ_iᵀ Q Δ_j.
  const fd = finiteDifferenceEta(new ModelGame(quad, xq, { reference: rq, groups }));
  const h = hessianEta(hvp(xq, playerDirections(xq, rq, groups), 4), xq, rq, groups);
  for (let k = 0; k < 16; k++) assert.ok(Math.abs(fd[k]! - h[k]!) < 1e-9, `entry ${k}: ${fd[k]} vs ${h[k]}`);
  // Through the explainer: 'auto' picks the Hessian and says so; no selection evaluations.
  const explainer = new Explainer({ inputSize: w, predict: quad, hessianVectorProducts: hvp, hessianSource: 'analytic' }, { reference: rq, groups });
  const e = explainer.explain(xq, { method: 'shear', budget: 4 });
  assert.equal(e.crossContribution, 'hessian (analytic)');
  assert.equal(e.selectionEvaluations, 0);
  const fdE = explainer.explain(xq, { method: 'shear', budget: 4, crossContribution: 'finite-difference' });
  assert.deepEqual(fdE.cooperators, e.cooperators);
});

test('same seed gives identical estimates; different seeds differ', () => {
  const game = randomTableGame(6, 3);
  const explainer = new Explainer((batch, rows) => game.values(Uint8Array.from(batch, (v) => v), rows), { reference: new Float64Array(6) });
  const ones = new Float64Array(6).fill(1);
  for (const method of METHODS.filter((mt) => mt !== 'exact' && methodSupported(explainer.model, mt))) {
    const a = explainer.explain(ones, { method, budget: 8, seed: 1 }).values;
    assert.deepEqual(explainer.explain(ones, { method, budget: 8, seed: 1 }).values, a, method);
    assert.notDeepEqual(explainer.explain(ones, { method, budget: 8, seed: 2 }).values, a, method);
  }
});

test('metrics: absolute error, rank accuracy, faithfulness curve', () => {
  assert.equal(absError([1, 2, 3], [1, 2.5, 2]), 1.5);
  assert.equal(rankAccuracy([3, 1, 2], [3, 2, 1]), 1 / 3);
  assert.equal(rankAccuracy([0.1, 0.2], [1, 2]), 1);
  assert.throws(() => absError([1], [1, 2]), /absError: estimate has 1 values, reference has 2/);
  const game = new ModelGame(linear, x, { reference: ref, groups });
  const curve = faithfulnessCurve(game, linearPhi);
  assert.equal(curve.monotonicity, 1);
  assert.ok(Math.abs(curve.faithfulness - 1) < 1e-12);
  assert.ok(Math.abs(curve.values[4]! - curve.values[0]! - linearPhi.reduce((s, v) => s + v, 0)) < 1e-12);
  assert.deepEqual(curve.order, [...curve.order].sort((p, q) => Math.abs(linearPhi[q]!) - Math.abs(linearPhi[p]!)));
});

test('bad input: clear errors', () => {
  const explainer = new Explainer(linear, { reference: ref, groups });
  assert.throws(() => explainer.explain(x, { method: 'magic' as never }), /unknown method 'magic'/);
  assert.throws(() => explainer.explain(x.subarray(0, 3), { method: 'exact' }), /row has 3 values, the model takes 7/);
  assert.throws(() => explainer.explain(Float64Array.from(x, (v, i) => (i === 2 ? NaN : v)), { method: 'exact' }), /explained row has a non-finite value at index 2/);
  assert.throws(() => explainer.explain(x, { method: 'shear', budget: 1 }), /shear: budget must be an integer ≥ 2/);
  assert.throws(() => explainer.explain(x, { method: 'permutation', budget: 0 }), /permutation: budget must be a positive integer/);
  assert.throws(() => explainer.explain(x, { method: 'shear', crossContribution: 'hessian' }), /needs a model with hessianVectorProducts/);
  assert.throws(() => new Explainer(linear, { reference: ref, groups: [{ name: 'a', start: 0, end: 3 }, { name: 'b', start: 2, end: 7 }] }).explain(x, { method: 'exact' }), /column 2 belongs to more than one group/);
  assert.throws(() => new Explainer(linear, { reference: ref, groups: [{ name: 'a', start: 0, end: 3 }] }).explain(x, { method: 'exact' }), /column 3 belongs to no group/);
  assert.throws(() => new ModelGame(linear, x, { reference: ref, background: ref }), /exactly one of reference/);
  assert.throws(() => new ModelGame(linear, x, { background: ref.subarray(0, 5) }), /background has 5 values, not a multiple of the 7/);
  const nanModel = new Explainer((_b, rows) => new Float64Array(rows).fill(NaN), { reference: ref });
  assert.throws(() => nanModel.explain(x, { method: 'exact' }), /model returned a non-finite output/);
  const short = new Explainer((_b, rows) => new Float64Array(rows - 1), { reference: ref });
  assert.throws(() => short.explain(x, { method: 'permutation', budget: 4 }), /model returned \d+ outputs for \d+ rows/);
});
