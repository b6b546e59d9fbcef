/** Accuracy and faithfulness metrics for Shapley estimates (spec §4, SHEAR repository definitions). */
import type { CooperativeGame } from './game.js';

function checkSameLength(name: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`${name}: estimate has ${a.length} values, reference has ${b.length}`);
}

/**
 * Absolute error Σ_i |φ̂_i − φ_i| of one instance.
 * @example absError([1, 2], [1, 2.5]) // 0.5
 */
export function absError(estimate: ArrayLike<number>, exact: ArrayLike<number>): number {
  checkSameLength('absError', estimate, exact);
  let s = 0;
  for (let i = 0; i < exact.length; i++) s += Math.abs(estimate[i]! - exact[i]!);
  return s;
}

/** Indices sorting `v` ascending (signed values), ties to the lower index. */
export function argsort(v: ArrayLike<number>): number[] {
  return Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a]! - v[b]! || a - b);
}

/**
 * Ranking accuracy: fraction of rank positions p where argsort(φ̂)[p] = argsort(φ)[p] (signed,
 * ascending, as in the SHEAR repository).
 * @example rankAccuracy([3, 1, 2], [3, 2, 1]) // 1/3
 */
export function rankAccuracy(estimate: ArrayLike<number>, exact: ArrayLike<number>): number {
  checkSameLength('rankAccuracy', estimate, exact);
  const a = argsort(estimate), b = argsort(exact);
  let hits = 0;
  for (let p = 0; p < a.length; p++) if (a[p] === b[p]) hits++;
  return hits / a.length;
}

/** Pearson correlation; 0 when either side is constant. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkSameLength('pearson', a, b);
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]!; mb += b[i]!; }
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    sab += da * db; saa += da * da; sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/** Result of {@link faithfulnessCurve}. */
export interface FaithfulnessCurve {
  /** Players in the order added (descending |φ̂|). */
  order: number[];
  /** v of each prefix: values[0] = v(∅), values[M] = v(F). */
  values: Float64Array;
  /** |Δv| at each step (length M). */
  steps: Float64Array;
  /** Fraction of consecutive steps with non-increasing |Δv|. */
  monotonicity: number;
  /** Pearson correlation between |φ̂| of the added player and the observed |Δv| of its step. */
  faithfulness: number;
}

/**
 * Adds players one by one from the reference towards x in order of decreasing |φ̂| and records the
 * game value after each step (M − 1 coalition evaluations plus v(∅), v(F)).
 */
export function faithfulnessCurve(game: CooperativeGame, estimate: ArrayLike<number>): FaithfulnessCurve {
  const m = game.players;
  if (estimate.length !== m) throw new RangeError(`faithfulnessCurve: estimate has ${estimate.length} values, game has ${m} players`);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => Math.abs(estimate[b]!) - Math.abs(estimate[a]!) || a - b);
  const masks = new Uint8Array((m + 1) * m);
  for (let k = 1; k <= m; k++) {
    masks.copyWithin(k * m, (k - 1) * m, k * m);
    masks[k * m + order[k - 1]!] = 1;
  }
  const values = game.values(masks, m + 1);
  const steps = new Float64Array(m);
  for (let k = 0; k < m; k++) steps[k] = Math.abs(values[k + 1]! - values[k]!);
  let nonIncreasing = 0;
  for (let k = 1; k < m; k++) if (steps[k]! <= steps[k - 1]!) nonIncreasing++;
  const magnitudes = order.map((p) => Math.abs(estimate[p]!));
  return { order, values, steps, monotonicity: m > 1 ? nonIncreasing / (m - 1) : 1, faithfulness: pearson(magnitudes, steps) };
}

/** Result of {@link deletionCurve}. */
export interface DeletionCurve {
  /** Players in the order removed / inserted (descending signed φ̂: strongest evidence first). */
  order: number[];
  /** Game value after removing the top k players from the full coalition, k = 0..M, normalised (see below). */
  deletion: Float64Array;
  /** Game value of the top k players alone, k = 0..M, normalised. */
  insertion: Float64Array;
  /** Trapezoid area under `deletion` over k/M ∈ [0, 1]: lower = the estimate found what matters first. */
  deletionAuc: number;
  /** Area under `insertion`: higher is better. */
  insertionAuc: number;
}

function trapezoid(y: Float64Array): number {
  const m = y.length - 1;
  let s = 0;
  for (let k = 0; k < m; k++) s += (y[k]! + y[k + 1]!) / 2;
  return s / m;
}

/**
 * Deletion and insertion faithfulness curves (Petsiuk et al. 2018, RISE; the image-attribution
 * standard): players ordered by decreasing signed φ̂ are removed from x (replaced by the reference /
 * masker) one at a time, or inserted into the reference. Values are normalised as
 * (v − v(∅)) / (v(F) − v(∅)), so 1 = the full output and 0 = the masked one. 2M coalition evaluations.
 * @example deletionCurve(game, phi).deletionAuc // e.g. 0.12; a random order gives about 0.5 on additive games
 */
export function deletionCurve(game: CooperativeGame, estimate: ArrayLike<number>): DeletionCurve {
  const m = game.players;
  if (estimate.length !== m) throw new RangeError(`deletionCurve: estimate has ${estimate.length} values, game has ${m} players`);
  const order = argsort(estimate).reverse();
  const masks = new Uint8Array(2 * (m + 1) * m);
  masks.fill(1, 0, m); // deletion rows 0..M start full
  for (let k = 1; k <= m; k++) {
    masks.copyWithin(k * m, (k - 1) * m, k * m);
    masks[k * m + order[k - 1]!] = 0;
    const ins = (m + 1 + k) * m;
    masks.copyWithin(ins, ins - m, ins);
    masks[ins + order[k - 1]!] = 1;
  }
  const v = game.values(masks, 2 * (m + 1));
  const empty = v[m]!, fullValue = v[0]!;
  const span = fullValue - empty;
  const scale = (value: number) => (span !== 0 ? (value - empty) / span : 0);
  const deletion = Float64Array.from({ length: m + 1 }, (_, k) => scale(v[k]!));
  const insertion = Float64Array.from({ length: m + 1 }, (_, k) => scale(v[m + 1 + k]!));
  return { order, deletion, insertion, deletionAuc: trapezoid(deletion), insertionAuc: trapezoid(insertion) };
}
