/**
 * Shapley value estimators over a {@link CooperativeGame}. Every sampling estimator takes a budget
 * N = coalition evaluations PER PLAYER (the "Eval. number" of the SHEAR paper), i.e. at most N·M
 * evaluations for M players, so all methods are compared at the same cost. See
 * /work/shared/spec/explain.md §2–3 for the definitions.
 */
import type { Rng } from '../util/rng.js';
import type { CooperativeGame } from './game.js';

/** Thrown when a budget is too small (or too large) for a method; the message says the minimum. */
export class BudgetError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'BudgetError';
  }
}

/** Largest player count for exact enumeration by default (M·2^M work, 2^M coalition evaluations). */
export const MAX_EXACT_PLAYERS = 20;

function checkBudget(method: string, budget: number): void {
  if (!Number.isInteger(budget) || budget < 1) throw new BudgetError(`${method}: budget must be a positive integer (evaluations per feature), got ${budget}`);
}

/** Shapley weight w_M(s) = s!(M−s−1)!/M! = 1/(M·C(M−1, s)), for s = 0..M−1. */
export function shapleyWeights(m: number): Float64Array {
  const w = new Float64Array(m);
  let binom = 1; // C(m-1, s)
  for (let s = 0; s < m; s++) {
    w[s] = 1 / (m * binom);
    binom = (binom * (m - 1 - s)) / (s + 1);
  }
  return w;
}

function popcount(v: number): number {
  let c = 0;
  while (v) { v &= v - 1; c++; }
  return c;
}

/** Values of the empty and the full coalition (2 evaluations). */
function endpoints(game: CooperativeGame): [number, number] {
  const m = game.players;
  const masks = new Uint8Array(2 * m);
  masks.fill(1, m);
  const v = game.values(masks, 2);
  return [v[0]!, v[1]!];
}

/**
 * Exact Shapley values by enumerating all 2^M coalitions (evaluated in batches of `chunk`), then
 * φ_i = Σ_{S∌i} w_M(|S|)·[v(S∪{i}) − v(S)]. Satisfies efficiency up to rounding.
 * @example const phi = exactShapley(game); // game.players ≤ 20
 */
export function exactShapley(game: CooperativeGame, maxPlayers = MAX_EXACT_PLAYERS, chunk = 4096): Float64Array {
  const m = game.players;
  if (m > maxPlayers) throw new BudgetError(`exact: ${m} players need 2^${m} coalition evaluations; limit is ${maxPlayers} players (use a sampling method)`);
  const total = 2 ** m;
  const v = new Float64Array(total);
  const n = Math.min(chunk, total);
  const masks = new Uint8Array(n * m);
  for (let s0 = 0; s0 < total; s0 += n) {
    const count = Math.min(n, total - s0);
    for (let k = 0; k < count; k++) {
      const s = s0 + k;
      for (let p = 0; p < m; p++) masks[k * m + p] = (s >>> p) & 1;
    }
    v.set(game.values(masks, count), s0);
  }
  const w = shapleyWeights(m);
  const phi = new Float64Array(m);
  for (let s = 0; s < total; s++) {
    const ws = w[popcount(s)] ?? 0;
    for (let p = 0; p < m; p++) {
      if (!((s >>> p) & 1)) phi[p]! += ws * (v[s | (1 << p)]! - v[s]!);
    }
  }
  return phi;
}

/** Number of permutations a budget buys: v(∅), v(F) shared, M−1 interior evaluations each. */
export function permutationsForBudget(players: number, budget: number): number {
  return players === 1 ? 1 : Math.floor((budget * players - 2) / (players - 1));
}

/**
 * The orders a budget buys for permutation sampling: ⌊(N·M − 2)/(M − 1)⌋ uniform permutations, or
 * (antithetic) that many rounded down to even, every second one the reverse of the one before.
 */
function permutationOrders(method: string, m: number, budget: number, rng: Rng, antithetic: boolean): Int32Array[] {
  checkBudget(method, budget);
  let perms = permutationsForBudget(m, budget);
  if (antithetic) perms -= perms % 2;
  const minimum = antithetic ? 2 : 1;
  if (perms < minimum) {
    throw new BudgetError(`${method}: budget ${budget} per feature buys ${perms} permutation(s) of ${m} players; need ${minimum} (budget ≥ ${Math.ceil((minimum * (m - 1) + 2) / m)})`);
  }
  const orders: Int32Array[] = [];
  for (let p = 0; p < perms; p++) {
    if (antithetic && p % 2 === 1) orders.push(orders[p - 1]!.slice().reverse());
    else orders.push(rng.permutation(m));
  }
  return orders;
}

/**
 * φ̂_i = mean over `orders` of v(Pre_i(π) ∪ {i}) − v(Pre_i(π)): v(∅) and v(F) once, then the M − 1
 * interior prefixes of every order in one batch.
 */
function chainShapley(game: CooperativeGame, orders: readonly Int32Array[]): Float64Array {
  const m = game.players, perms = orders.length;
  const [v0, v1] = endpoints(game);
  const inner = m - 1;
  const masks = new Uint8Array(perms * inner * m);
  for (let p = 0; p < perms; p++) {
    const order = orders[p]!;
    for (let k = 1; k <= inner; k++) {
      const row = (p * inner + k - 1) * m;
      for (let q = 0; q < k; q++) masks[row + order[q]!] = 1;
    }
  }
  const v = game.values(masks, perms * inner);
  const phi = new Float64Array(m);
  for (let p = 0; p < perms; p++) {
    const order = orders[p]!;
    let prev = v0;
    for (let k = 1; k <= m; k++) {
      const cur = k === m ? v1 : v[p * inner + k - 1]!;
      phi[order[k - 1]!]! += cur - prev;
      prev = cur;
    }
  }
  for (let i = 0; i < m; i++) phi[i]! /= perms;
  return phi;
}

/**
 * Permutation sampling (PS): φ̂_i = mean over permutations π of v(Pre_i(π) ∪ {i}) − v(Pre_i(π)).
 * Unbiased. `antithetic` pairs every permutation with its reverse (APS), also unbiased and exact
 * for games with at most pairwise interactions. Budget N buys ⌊(N·M − 2)/(M − 1)⌋ permutations
 * (rounded down to even when antithetic).
 */
export function permutationShapley(game: CooperativeGame, budget: number, rng: Rng, antithetic = false): Float64Array {
  const m = game.players;
  if (m === 1) {
    checkBudget(antithetic ? 'antithetic' : 'permutation', budget);
    const [v0, v1] = endpoints(game);
    return Float64Array.of(v1 - v0);
  }
  return chainShapley(game, permutationOrders(antithetic ? 'antithetic' : 'permutation', m, budget, rng, antithetic));
}

/** Number of triples {i < j < k} of M players, the length of a packed third-order array. */
export function tripleCount(players: number): number {
  return (players * (players - 1) * (players - 2)) / 6;
}

/**
 * Antithetic permutation sampling with a third-order control variate (`shear-cv`). `triples` holds
 * one interaction coefficient D_ijk per triple i < j < k (lexicographic, {@link tripleCount} values),
 * which defines the surrogate game g(S) = Σ_{ijk ⊆ S} D_ijk. Its Shapley values are exact
 * (φ_i(g) = Σ_{jk} D_ijk / 3: every coalition of each triple enumerated), and on every sampled
 * order its chain estimate is known without a model call (D_ijk goes to the triple's last member).
 * Returns φ̂(f) − φ̂(g) + φ(g) on the same orders as `permutationShapley(…, true)` (same seed, same
 * orders, same N·M budget accounting). Unbiased and efficient (Σφ̂ = v(F) − v(∅)) for every D;
 * exact on games with interactions of order ≤ 3 when D holds their third-order Harsanyi dividends;
 * the closer D is to those dividends, the smaller the variance.
 * @example const phi = controlVariateShapley(game, 8, new Rng(0), triples); // triples: tripleCount(M) values
 */
export function controlVariateShapley(game: CooperativeGame, budget: number, rng: Rng, triples: Float64Array): Float64Array {
  const m = game.players;
  if (triples.length !== tripleCount(m)) throw new RangeError(`shear-cv: ${m} players have ${tripleCount(m)} triples, got ${triples.length} interaction values`);
  const bad = triples.findIndex((d) => !Number.isFinite(d));
  if (bad >= 0) throw new RangeError(`shear-cv: third-order interaction ${bad} is not finite (${triples[bad]})`);
  if (m === 1) {
    checkBudget('shear-cv', budget);
    const [v0, v1] = endpoints(game);
    return Float64Array.of(v1 - v0);
  }
  const orders = permutationOrders('shear-cv', m, budget, rng, true);
  const phi = chainShapley(game, orders);
  // − chain estimate of g (each order gives D_ijk to whichever of i, j, k comes last) + exact φ(g).
  const pos = new Int32Array(m);
  const scale = 1 / orders.length;
  for (const order of orders) {
    order.forEach((player, k) => { pos[player] = k; });
    let t = 0;
    for (let i = 0; i < m; i++) {
      for (let j = i + 1; j < m; j++) {
        const pij = Math.max(pos[i]!, pos[j]!), lastIJ = pos[i]! > pos[j]! ? i : j;
        for (let k = j + 1; k < m; k++, t++) phi[pos[k]! > pij ? k : lastIJ]! -= scale * triples[t]!;
      }
    }
  }
  let t = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      for (let k = j + 1; k < m; k++, t++) {
        const share = triples[t]! / 3;
        phi[i]! += share; phi[j]! += share; phi[k]! += share;
      }
    }
  }
  return phi;
}

/** Solves A x = b (n×n, row-major, copied) by Gaussian elimination with partial pivoting; null if singular. */
export function solveLinear(a: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const A = a.slice(), x = b.slice();
  let scale = 0;
  for (const v of A) scale = Math.max(scale, Math.abs(v));
  const tol = scale * n * 1e-12;
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]!) > Math.abs(A[piv * n + col]!)) piv = r;
    if (!(Math.abs(A[piv * n + col]!) > tol)) return null;
    if (piv !== col) {
      for (let c = 0; c < n; c++) { const t = A[col * n + c]!; A[col * n + c] = A[piv * n + c]!; A[piv * n + c] = t; }
      const t = x[col]!; x[col] = x[piv]!; x[piv] = t;
    }
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col]! / A[col * n + col]!;
      if (f === 0) continue;
      for (let c = col; c < n; c++) A[r * n + c]! -= f * A[col * n + c]!;
      x[r]! -= f * x[col]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let c = r + 1; c < n; c++) s -= A[r * n + c]! * x[c]!;
    x[r] = s / A[r * n + r]!;
  }
  return x;
}

/**
 * KernelSHAP (Lundberg & Lee 2017; Covert & Lee 2021 formulation): sample coalitions from the
 * Shapley kernel (size s with probability ∝ (M−1)/(s(M−s)), members uniform), then solve the
 * efficiency-constrained least squares φ = A⁻¹(b − 1·λ) with A = mean zzᵀ, b = mean z(v(z) − v(∅)).
 * `paired` adds the complement of every sample (Covert & Lee's paired sampling). Consistent, not
 * unbiased. Budget N: N·M − 2 samples after v(∅), v(F); at least M needed for A to be invertible.
 */
export function kernelShapley(game: CooperativeGame, budget: number, rng: Rng, paired = false): Float64Array {
  const method = paired ? 'kernel-paired' : 'kernel';
  checkBudget(method, budget);
  const m = game.players;
  const [v0, v1] = endpoints(game);
  if (m === 1) return Float64Array.of(v1 - v0);
  let samples = budget * m - 2;
  if (paired) samples -= samples % 2;
  if (samples < m) throw new BudgetError(`${method}: budget ${budget} per feature gives ${samples} sampled coalitions for ${m} players; the regression needs at least ${m} (budget ≥ 2)`);
  // Size distribution of the Shapley kernel: p(s) ∝ 1/(s(M−s)).
  const sizeCdf = new Float64Array(m - 1);
  let acc = 0;
  for (let s = 1; s < m; s++) { acc += 1 / (s * (m - s)); sizeCdf[s - 1] = acc; }
  const masks = new Uint8Array(samples * m);
  for (let k = 0; k < samples; k++) {
    const row = k * m;
    if (paired && k % 2 === 1) {
      for (let p = 0; p < m; p++) masks[row + p] = 1 - masks[row - m + p]!;
      continue;
    }
    const u = rng.uniform() * acc;
    let s = 1;
    while (s < m - 1 && sizeCdf[s - 1]! <= u) s++;
    const order = rng.permutation(m);
    for (let q = 0; q < s; q++) masks[row + order[q]!] = 1;
  }
  const v = game.values(masks, samples);
  const A = new Float64Array(m * m), b = new Float64Array(m);
  for (let k = 0; k < samples; k++) {
    const row = k * m, dv = v[k]! - v0;
    for (let i = 0; i < m; i++) {
      if (!masks[row + i]) continue;
      b[i]! += dv;
      for (let j = 0; j < m; j++) if (masks[row + j]) A[i * m + j]! += 1;
    }
  }
  for (let i = 0; i < m * m; i++) A[i]! /= samples;
  for (let i = 0; i < m; i++) b[i]! /= samples;
  const ones = new Float64Array(m).fill(1);
  const aInvB = solveLinear(A, b, m), aInv1 = solveLinear(A, ones, m);
  if (!aInvB || !aInv1) {
    throw new BudgetError(`${method}: the ${samples} sampled coalitions do not determine ${m} values (singular regression); increase the budget above ${budget}`);
  }
  let sumB = 0, sum1 = 0;
  for (let i = 0; i < m; i++) { sumB += aInvB[i]!; sum1 += aInv1[i]!; }
  const lambda = (sumB - (v1 - v0)) / sum1;
  const phi = new Float64Array(m);
  for (let i = 0; i < m; i++) phi[i] = aInvB[i]! - lambda * aInv1[i]!;
  return phi;
}

/** SHEAR's cooperator count for a budget: K = ⌊log2 N⌋ − 1, capped at M − 1. */
export function shearCooperators(players: number, budget: number): number {
  return Math.min(Math.floor(Math.log2(budget)) - 1, players - 1);
}

/**
 * Cooperators of every player: the K others with the largest cross-contribution η_i· (ties to the
 * lower index). `eta` is M×M row-major; the diagonal is ignored.
 */
export function selectCooperators(eta: Float64Array, players: number, k: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i < players; i++) {
    const others = Array.from({ length: players }, (_, j) => j).filter((j) => j !== i);
    others.sort((a, b) => eta[i * players + b]! - eta[i * players + a]! || a - b);
    out.push(Int32Array.from(others.slice(0, k)));
  }
  return out;
}

/** K cooperators per player chosen uniformly at random (the `efs_ablation` baseline). */
export function randomCooperators(players: number, k: number, rng: Rng): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i < players; i++) {
    const others = Array.from(rng.permutation(players)).filter((j) => j !== i);
    out.push(Int32Array.from(others.slice(0, k)));
  }
  return out;
}

/**
 * SHEAR contribution estimate (Wang et al., ICML 2022; spec §2.3 step 3): for each player i with
 * cooperators C_i (|C_i| = K), enumerate all 2^K subsets S ⊆ C_i and evaluate v with and without i;
 * every other player is present with probability ½, the masks of S and of its complement C_i∖S
 * being complementary (antithetic). φ̂_i = Σ_S w_{K+1}(|S|)·[v(S∪R∪{i}) − v(S∪R)]. With K = 0 the
 * other players are all present. Uses M·2^{K+1} ≤ M·N evaluations in one batch.
 */
export function shearShapley(game: CooperativeGame, cooperators: readonly Int32Array[], rng: Rng): Float64Array {
  const m = game.players;
  if (cooperators.length !== m) throw new RangeError(`shear: need cooperators for ${m} players, got ${cooperators.length}`);
  const k = cooperators[0]!.length;
  if (cooperators.some((c) => c.length !== k)) throw new RangeError('shear: every player needs the same number of cooperators');
  const subsets = 2 ** k;
  const half = subsets / 2;
  const rows = 2 * subsets; // with and without i per subset
  const masks = new Uint8Array(m * rows * m);
  const isCooperator = new Uint8Array(m);
  for (let i = 0; i < m; i++) {
    const coop = cooperators[i]!;
    isCooperator.fill(0);
    for (const c of coop) {
      if (c === i || c < 0 || c >= m) throw new RangeError(`shear: invalid cooperator ${c} for player ${i}`);
      isCooperator[c] = 1;
    }
    for (let s = 0; s < subsets; s++) {
      const without = (i * rows + 2 * s) * m, withI = without + m;
      for (let j = 0; j < m; j++) {
        if (j === i || isCooperator[j]) continue;
        // Others: random for the first half of subsets, complement of the mirrored subset after.
        let present: number;
        if (k === 0) present = 1;
        else if (s < half) present = rng.uniform() < 0.5 ? 1 : 0;
        else present = 1 - masks[(i * rows + 2 * (subsets - 1 - s)) * m + j]!;
        masks[without + j] = present;
      }
      for (let b = 0; b < k; b++) if ((s >>> b) & 1) masks[without + coop[b]!] = 1;
      masks.copyWithin(withI, without, without + m);
      masks[withI + i] = 1;
    }
  }
  const v = game.values(masks, m * rows);
  const w = shapleyWeights(k + 1);
  const phi = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let sum = 0;
    for (let s = 0; s < subsets; s++) sum += w[popcount(s)]! * (v[i * rows + 2 * s + 1]! - v[i * rows + 2 * s]!);
    phi[i] = sum;
  }
  return phi;
}

/**
 * Finite-difference cross-contribution η_ij = |v({i,j}) − v({i}) − v({j}) + v(∅)|: the interaction
 * of i and j with every other player at the reference (spec §2.4, the "others at r" choice).
 * Costs 1 + M + M(M−1)/2 evaluations. Returns M×M, zero diagonal.
 */
export function finiteDifferenceEta(game: CooperativeGame): Float64Array {
  const m = game.players;
  const pairs = (m * (m - 1)) / 2;
  const count = 1 + m + pairs;
  const masks = new Uint8Array(count * m);
  for (let i = 0; i < m; i++) masks[(1 + i) * m + i] = 1;
  let row = 1 + m;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++, row++) { masks[row * m + i] = 1; masks[row * m + j] = 1; }
  }
  const v = game.values(masks, count);
  const eta = new Float64Array(m * m);
  row = 1 + m;
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++, row++) {
      const e = Math.abs(v[row]! - v[1 + i]! - v[1 + j]! + v[0]!);
      eta[i * m + j] = e;
      eta[j * m + i] = e;
    }
  }
  return eta;
}

/**
 * SHEAR's second-order directions: row i is x − r on player i's columns and 0 elsewhere (M × width).
 * Hessian-vector products with these rows give every cross-contribution in M products.
 */
export function playerDirections(x: Float64Array, r: Float64Array, groups: readonly { start: number; end: number }[]): Float64Array {
  const width = x.length;
  const dirs = new Float64Array(groups.length * width);
  groups.forEach((g, i) => {
    for (let c = g.start; c < g.end; c++) dirs[i * width + c] = x[c]! - r[c]!;
  });
  return dirs;
}

/**
 * Hessian cross-contribution (spec §2.3 step 1): η_ij = |Δ_iᵀ H Δ_j|, the second-order Taylor term
 * of moving players i and j together from r to x, from `hv` (row i = H·Δ_i, see
 * {@link playerDirections}); symmetrised. For single-column players this is |H_ab|·|x_a − r_a|·|x_b − r_b|
 * exactly as in the paper; for one-hot blocks it is the block's directional second derivative
 * (the SHEAR repository takes the max over block entries instead, which needs the full Hessian).
 */
export function hessianEta(hv: ArrayLike<number>, x: Float64Array, r: Float64Array, groups: readonly { start: number; end: number }[]): Float64Array {
  const width = x.length, m = groups.length;
  if (hv.length !== m * width) throw new RangeError(`shear: ${hv.length} Hessian-vector product values, expected ${m} players × ${width} columns`);
  const cross = new Float64Array(m * m); // Δ_jᵀ (H Δ_i)
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      const g = groups[j]!;
      let s = 0;
      for (let c = g.start; c < g.end; c++) s += (x[c]! - r[c]!) * hv[i * width + c]!;
      cross[i * m + j] = s;
    }
  }
  const eta = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) if (i !== j) eta[i * m + j] = Math.abs((cross[i * m + j]! + cross[j * m + i]!) / 2);
  }
  return eta;
}

/**
 * P(r | s) for the non-cooperators of a player: in a uniformly random order of all M players, given
 * that exactly s of the player's K cooperators precede it, the probability that exactly r of its
 * n = M − 1 − K non-cooperators do: ∝ C(n, r)·w_M(s + r). Returns the CDF over r = 0..n.
 */
function nonCooperatorSizeCdf(m: number, k: number, s: number): Float64Array {
  const n = m - 1 - k;
  const w = shapleyWeights(m);
  const cdf = new Float64Array(n + 1);
  let binom = 1, acc = 0; // C(n, r)
  for (let r = 0; r <= n; r++) {
    acc += binom * w[s + r]!;
    cdf[r] = acc;
    binom = (binom * (n - r)) / (r + 1);
  }
  for (let r = 0; r <= n; r++) cdf[r]! /= acc;
  return cdf;
}

/**
 * SHEAR with Shapley-distributed, fully antithetic non-cooperators (`shear-antithetic`). As in
 * {@link shearShapley}, every subset S of player i's K cooperators is enumerated with the exact
 * (K+1)-player weight w_{K+1}(|S|), and i is evaluated with and without. The other players R are not
 * a fair coin each (which weights their higher-order interactions as Banzhaf would, a bias) but are
 * drawn from their exact conditional law in a random order given S: |R| = r with probability
 * ∝ C(n, r)·w_M(|S| + r), members uniform. Every draw (S, R) is paired with its reverse-order twin
 * (C_i∖S, N_i∖R) (same law, by the symmetry w_M(t) = w_M(M − 1 − t)); with K = 0 the twin is the
 * next round's draw. Hence: unbiased for every game and every cooperator choice; exact for games
 * with at most pairwise interactions (each pair of terms sums to the pairwise halves); exact for
 * interactions confined to {i} ∪ C_i. `rounds` repeats the draw (evaluations: M·rounds·2^{K+1};
 * rounds must be even when K = 0).
 * @example const phi = shearAntitheticShapley(game, selectCooperators(eta, m, 2), new Rng(0));
 */
export function shearAntitheticShapley(game: CooperativeGame, cooperators: readonly Int32Array[], rng: Rng, rounds = 1): Float64Array {
  const m = game.players;
  if (cooperators.length !== m) throw new RangeError(`shear-antithetic: need cooperators for ${m} players, got ${cooperators.length}`);
  const k = cooperators[0]!.length;
  if (cooperators.some((c) => c.length !== k)) throw new RangeError('shear-antithetic: every player needs the same number of cooperators');
  if (!Number.isInteger(rounds) || rounds < 1 || (k === 0 && rounds % 2 !== 0)) throw new RangeError(`shear-antithetic: rounds must be a positive integer, even without cooperators; got ${rounds}`);
  const subsets = 2 ** k;
  const perPlayer = rounds * subsets * 2; // rows: (round, subset, without/with i)
  const masks = new Uint8Array(m * perPlayer * m);
  const cdfs = Array.from({ length: k + 1 }, (_, s) => nonCooperatorSizeCdf(m, k, s));
  const isCooperator = new Uint8Array(m);
  const others = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const coop = cooperators[i]!;
    isCooperator.fill(0);
    for (const c of coop) {
      if (c === i || c < 0 || c >= m || isCooperator[c]) throw new RangeError(`shear-antithetic: invalid or repeated cooperator ${c} for player ${i}`);
      isCooperator[c] = 1;
    }
    let n = 0;
    for (let j = 0; j < m; j++) if (j !== i && !isCooperator[j]) others[n++] = j;
    for (let round = 0; round < rounds; round++) {
      for (let s = 0; s < subsets; s++) {
        const without = (i * perPlayer + (round * subsets + s) * 2) * m, withI = without + m;
        // Twin: mirrored subset in the same round, or (K = 0) the previous round's draw.
        const twin = k > 0 ? (s >= subsets / 2 ? round * subsets + (subsets - 1 - s) : -1) : (round % 2 === 1 ? round - 1 : -1);
        if (twin >= 0) {
          const t = (i * perPlayer + twin * 2) * m;
          for (let q = 0; q < n; q++) masks[without + others[q]!] = 1 - masks[t + others[q]!]!;
        } else {
          const cdf = cdfs[popcount(s)]!;
          const u = rng.uniform();
          let r = 0;
          while (r < n && cdf[r]! <= u) r++;
          // Uniform r-subset of the non-cooperators (partial Fisher–Yates).
          for (let q = 0; q < r; q++) {
            const pick = q + rng.int(n - q);
            const tmp = others[q]!; others[q] = others[pick]!; others[pick] = tmp;
            masks[without + others[q]!] = 1;
          }
        }
        for (let b = 0; b < k; b++) if ((s >>> b) & 1) masks[without + coop[b]!] = 1;
        masks.copyWithin(withI, without, without + m);
        masks[withI + i] = 1;
      }
    }
  }
  const v = game.values(masks, m * rounds * subsets * 2);
  const w = shapleyWeights(k + 1);
  const phi = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let sum = 0;
    for (let row = 0; row < rounds * subsets; row++) {
      const base = i * perPlayer + row * 2;
      sum += w[popcount(row % subsets)]! * (v[base + 1]! - v[base]!);
    }
    phi[i] = sum / rounds;
  }
  return phi;
}
