/**
 * SmartDeal (Chen et al., TNNLS; after SmartExchange, ISCA 2020): a weight matrix W [outC, K] is
 * cut into row segments of S values (the last one of each row zero-padded), W' [M, S] with
 * M = outC·⌈K/S⌉, and stored as W' ≈ Ce·B: a small float basis B [r, S] and a coefficient matrix
 * Ce [M, r] that is vector-wise sparse (whole rows zero: the `sparsity` fraction of segments with
 * the smallest norms) and whose non-zeros are powers of two ±2^e, e in [emax − levels + 1, emax]
 * (rebuilt by shift-and-add). The factors come from alternating projection: Ce by least squares
 * on B, then projected (rows pruned, entries rounded to powers of two); B by least squares on Ce.
 *
 * Stored form (deployed `smartdeal` stage): `weights` = 4-bit codes of the kept rows' entries, 8
 * per u32 word (0: zero; sign·8 + j + 1: ±2^(emax − j)), `rowMask` = 1 bit per segment, `basis` =
 * B as float32, and the numbers segment, rank, emax. Inference runs on that form (smartdealGemm):
 * z = B·x per input segment, shared by every output, then Σ Ce·z over the kept rows.
 *
 * @example
 * const f = decompose(w, outC, K);              // w: Float32Array [outC·K]
 * const w2 = reconstruct(f);                     // Ce·B as float32, what the model computes with
 * const bits = storageBits(outC, K);             // what the deployed file spends on it
 */

import { kernels } from '../backends/index.js';
import { Tensor } from '../core/tensor.js';
import { kthSmallest } from './quantizers.js';
import { codeValues } from './smartdeal-kernels.js';

export { coeffValue, keptLists, pow2Thresholds, projectionShape, SMARTDEAL_LEVELS, smartdealCodes, smartdealGemm, smartdealProject, type KeptRows } from './smartdeal-kernels.js';

export interface SmartDealOptions {
  /** Values per segment (columns of the basis). */
  segment?: number;
  /** Rows of the basis (≤ segment). */
  rank?: number;
  /** Fraction of segments whose coefficient row is zero (vector-wise sparsity). */
  sparsity?: number;
  /** Alternating-projection rounds. */
  iterations?: number;
}

export const SMARTDEAL_DEFAULTS: Required<SmartDealOptions> = { segment: 4, rank: 4, sparsity: 0.5, iterations: 4 };

export interface SmartDealFactors {
  outC: number;
  K: number;
  segment: number;
  rank: number;
  /** Exponent of the largest coefficient magnitude. */
  emax: number;
  /** Per segment row: kept (1) or zero (0). */
  rowMask: Uint8Array;
  /** Ce codes [M, rank]: 0 = zero, else sign·8 + j + 1 for ±2^(emax − j). */
  codes: Uint8Array;
  /** B [rank, segment], float32 values. */
  basis: Float32Array;
}

/** Options with defaults, checked (RangeError naming the option). */
export function smartdealOptions(o: SmartDealOptions = {}): Required<SmartDealOptions> {
  const r = { ...SMARTDEAL_DEFAULTS, ...o };
  if (!Number.isInteger(r.segment) || r.segment < 1 || r.segment > 64) throw new RangeError(`smartdeal: segment must be an integer in 1..64, got ${o.segment}`);
  if (!Number.isInteger(r.rank) || r.rank < 1 || r.rank > r.segment) throw new RangeError(`smartdeal: rank must be an integer in 1..segment (${r.segment}), got ${o.rank}`);
  if (!(r.sparsity >= 0 && r.sparsity < 1)) throw new RangeError(`smartdeal: sparsity must be in [0, 1), got ${o.sparsity}`);
  if (!Number.isInteger(r.iterations) || r.iterations < 0) throw new RangeError(`smartdeal: iterations must be a non-negative integer, got ${o.iterations}`);
  return r;
}


/** Solves A·X = Y for X (A [n, n] symmetric positive semi-definite, Y [n, m]), with a small ridge. */
function solve(a: Float64Array, y: Float64Array, n: number, m: number): Float64Array {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i]!;
  const A = Float64Array.from(a), X = Float64Array.from(y);
  for (let i = 0; i < n; i++) A[i * n + i] += 1e-9 * (trace || 1) + 1e-30;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r * n + c]!) > Math.abs(A[p * n + c]!)) p = r;
    if (p !== c) {
      for (let j = 0; j < n; j++) [A[c * n + j], A[p * n + j]] = [A[p * n + j]!, A[c * n + j]!];
      for (let j = 0; j < m; j++) [X[c * m + j], X[p * m + j]] = [X[p * m + j]!, X[c * m + j]!];
    }
    const d = A[c * n + c]!;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r * n + c]! / d;
      if (f === 0) continue;
      for (let j = c; j < n; j++) A[r * n + j] -= f * A[c * n + j]!;
      for (let j = 0; j < m; j++) X[r * m + j] -= f * X[c * m + j]!;
    }
  }
  for (let r = 0; r < n; r++) for (let j = 0; j < m; j++) X[r * m + j] /= A[r * n + r]!;
  return X;
}

/** segmentMask's last threshold by shape and count (only a guess for the next selection). */
const lastThreshold = new Map<string, number>();

/**
 * Row mask of the M segments of w [outC, K] (⌈K/S⌉ per row, the last one zero-padded): the
 * floor(sparsity·M) with the smallest squared norms (ties by index, NaN as +∞) are pruned (0).
 */
function segmentMask(w: ArrayLike<number>, outC: number, K: number, S: number, sparsity: number): Uint8Array {
  const G = Math.ceil(K / S), M = outC * G, norms = new Float64Array(M);
  for (let o = 0; o < outC; o++) {
    for (let g = 0; g < G; g++) {
      let s = 0;
      for (let k = o * K + g * S, end = o * K + Math.min(K, g * S + S); k < end; k++) s += w[k]! * w[k]!;
      norms[o * G + g] = s === s ? s : Infinity;
    }
  }
  const rowMask = new Uint8Array(M), prune = Math.floor(sparsity * M);
  if (prune === 0) return rowMask.fill(1);
  // The last threshold of this shape as the selection's guess (weights move little per training step; same value).
  const key = `${outC}x${K}/${S}/${prune}`, thr = kthSmallest(norms.slice(), prune - 1, lastThreshold.get(key))!;
  lastThreshold.set(key, thr);
  // Below the threshold pruned (branch-free: about half are), then ties at it in index order.
  let n = 0;
  for (let i = 0; i < M; i++) {
    const keep = +(norms[i]! >= thr);
    rowMask[i] = keep;
    n += 1 - keep;
  }
  for (let i = 0; i < M && n < prune; i++) if (norms[i] === thr) rowMask[i] = 0, n++;
  return rowMask;
}

/**
 * The SmartDeal factors of w [outC, K] (row-major): deterministic (the same weights give the same
 * factors), so training forwards, conversion and summary agree. The rounds run on the backend's
 * smartdealProject / smartdealCodes kernels (float64 sums: every backend gives the same factors)
 * and stop early at a fixed point (codes and emax of two rounds equal: every later round would
 * repeat them), which gives the same factors as running all of them.
 */
export function decompose(w: ArrayLike<number>, outC: number, K: number, options: SmartDealOptions = {}): SmartDealFactors {
  const { segment: S, rank: r, sparsity, iterations } = smartdealOptions(options);
  const G = Math.ceil(K / S), M = outC * G;
  // Vector-wise sparsity: the segments with the smallest norms get zero coefficient rows.
  const rowMask = segmentMask(w, outC, K, S, sparsity);
  let count = 0;
  for (let i = 0; i < M; i++) count += rowMask[i]!;
  const kept = new Int32Array(count);
  for (let i = 0, e = 0; i < M; i++) if (rowMask[i]) kept[e++] = i;
  // The kept segments W' (zero-padded; exact in float32 when w is), the projection, the codes and the basis step's sums.
  // (Read from w before the backend allocates: w may be a view of memory that allocation replaces.)
  const dtype = w instanceof Float32Array ? 'float32' : 'float64', k = kernels(dtype);
  const segments = dtype === 'float32' ? new Float32Array(count * S) : new Float64Array(count * S);
  for (let e = 0; e < count; e++) {
    const o = Math.floor(kept[e]! / G), k0 = (kept[e]! % G) * S, n = Math.min(S, K - k0);
    for (let j = 0; j < n; j++) segments[e * S + j] = w[o * K + k0 + j]!;
  }
  const wk = Tensor.empty([count, S], dtype), pt = Tensor.empty([r, S], 'float64');
  const codesT = Tensor.empty([count, r], 'int32'), sumsT = Tensor.empty([r * r + r * S], 'float64');
  try {
    wk.data().set(segments);
    (codesT.data() as Int32Array).fill(0);
    // B starts as the first r unit vectors.
    let basis = new Float64Array(r * S);
    for (let t = 0; t < r; t++) basis[t * S + t] = 1;
    let emax = 0;
    const bbt = new Float64Array(r * r), sums = sumsT.data() as Float64Array;
    for (let it = 0; it <= iterations; it++) {
      // Least squares Ce = W'·Bᵀ(B·Bᵀ)⁻¹ (with (B·Bᵀ)⁻¹·B [r, S]: Ce_row = W'_row·((B·Bᵀ)⁻¹·B)ᵀ), then projected.
      for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) {
        let s = 0;
        for (let j = 0; j < S; j++) s += basis[a * S + j]! * basis[b * S + j]!;
        bbt[a * r + b] = s;
      }
      pt.data().set(solve(bbt, basis, r, S));
      const maxAbs = k.smartdealProject(wk, pt), emaxBefore = emax;
      emax = maxAbs > 0 ? Math.round(Math.log2(maxAbs)) : 0;
      const last = it === iterations;
      if (!last) sums.fill(0);
      const changed = k.smartdealCodes(wk, pt, codesT, last ? null : sumsT, emax);
      if (last || (it > 0 && changed === 0 && emax === emaxBefore)) break;
      // B = (CeᵀCe)⁻¹·CeᵀW' from the sums; rows of Ce that are all zero leave B's row undetermined:
      // keep it (as it is: the solve's ridge would shrink it).
      const ctc = sums.slice(0, r * r), ctw = sums.slice(r * r);
      const free = Array.from({ length: r }, (_, a) => ctc[a * r + a] === 0);
      for (let a = 0; a < r; a++) if (free[a]) ctc[a * r + a] = 1;
      const next = Float64Array.from(Float32Array.from(solve(ctc, ctw, r, S)));
      for (let a = 0; a < r; a++) if (free[a]) next.set(basis.subarray(a * S, a * S + S), a * S);
      basis = next;
    }
    const codes = new Uint8Array(M * r), cd = codesT.data() as Int32Array;
    for (let e = 0; e < count; e++) for (let t = 0; t < r; t++) codes[kept[e]! * r + t] = cd[e * r + t]!;
    return { outC, K, segment: S, rank: r, emax, rowMask, codes, basis: Float32Array.from(basis) };
  } finally {
    for (const t of [wk, pt, codesT, sumsT]) t.dispose();
  }
}

/** Ce·B as float32 [outC, K] (the padding of each row's last segment dropped). */
export function reconstruct(f: SmartDealFactors): Float32Array {
  const { outC, K, segment: S, rank: r } = f, G = Math.ceil(K / S), out = new Float32Array(outC * K), cv = codeValues(f.emax);
  const basis = Float64Array.from(f.basis), c = new Float64Array(r);
  for (let o = 0; o < outC; o++) {
    for (let g = 0; g < G; g++) {
      const row = o * G + g;
      if (!f.rowMask[row]) continue;
      for (let t = 0; t < r; t++) c[t] = cv[f.codes[row * r + t]!]!;
      const n = Math.min(S, K - g * S), at = o * K + g * S;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < r; t++) s += c[t]! * basis[t * S + j]!;
        out[at + j] = s;
      }
    }
  }
  return out;
}

/** Kept segment rows of a decomposition (the rows whose codes are stored). */
export const keptRows = (outC: number, K: number, options: SmartDealOptions = {}): number => {
  const { segment, sparsity } = smartdealOptions(options);
  const M = outC * Math.ceil(K / segment);
  return M - Math.floor(sparsity * M);
};

/** Bits the deployed form spends on a [outC, K] weight: codes of the kept rows, the row mask, the basis (u32 words, float32). */
export function storageBits(outC: number, K: number, options: SmartDealOptions = {}): number {
  const { segment, rank } = smartdealOptions(options);
  const M = outC * Math.ceil(K / segment);
  return 32 * (Math.ceil((keptRows(outC, K, options) * rank) / 8) + Math.ceil(M / 32) + rank * segment);
}

/** The stored arrays of a decomposition: nibble codes of kept rows (8 per word) and the row mask bits. */
export function packFactors(f: SmartDealFactors): { weights: Uint32Array; rowMask: Uint32Array } {
  const M = f.rowMask.length, r = f.rank;
  const rowMask = new Uint32Array(Math.ceil(M / 32));
  let kept = 0;
  for (let i = 0; i < M; i++) if (f.rowMask[i]) {
    rowMask[i >>> 5] |= 1 << (i & 31);
    kept++;
  }
  const weights = new Uint32Array(Math.ceil((kept * r) / 8));
  let n = 0;
  for (let i = 0; i < M; i++) {
    if (!f.rowMask[i]) continue;
    for (let t = 0; t < r; t++, n++) weights[n >>> 3] |= f.codes[i * r + t]! << ((n & 7) * 4);
  }
  return { weights, rowMask };
}

/** The factors of stored arrays (inverse of packFactors); sizes are checked, naming `what`. */
export function unpackFactors(stored: { weights: Uint32Array; rowMask: Uint32Array; basis: Float32Array; outC: number; K: number; segment: number; rank: number; emax: number }, what: string): SmartDealFactors {
  const { outC, K, segment: S, rank: r, emax } = stored;
  if (!Number.isInteger(S) || S < 1 || S > 64 || !Number.isInteger(r) || r < 1 || r > S) throw new Error(`${what}: segment ${S} / rank ${r} out of range (1 <= rank <= segment <= 64)`);
  if (!Number.isInteger(emax) || Math.abs(emax) > 126) throw new Error(`${what}: emax ${emax} is not an integer exponent in -126..126`);
  const M = outC * Math.ceil(K / S);
  if (!(stored.rowMask instanceof Uint32Array) || stored.rowMask.length !== Math.ceil(M / 32)) throw new Error(`${what}: rowMask must hold ${Math.ceil(M / 32)} u32 words for ${M} segments`);
  if (!(stored.basis instanceof Float32Array) || stored.basis.length !== r * S) throw new Error(`${what}: basis must hold ${r * S} float32 values`);
  const rowMask = new Uint8Array(M);
  let kept = 0;
  for (let i = 0; i < M; i++) kept += rowMask[i] = (stored.rowMask[i >>> 5]! >>> (i & 31)) & 1;
  if (!(stored.weights instanceof Uint32Array) || stored.weights.length !== Math.ceil((kept * r) / 8)) throw new Error(`${what}: weights must hold ${Math.ceil((kept * r) / 8)} u32 words of 4-bit codes for ${kept} kept segments`);
  const codes = new Uint8Array(M * r);
  let n = 0;
  for (let i = 0; i < M; i++) {
    if (!rowMask[i]) continue;
    for (let t = 0; t < r; t++, n++) codes[i * r + t] = (stored.weights[n >>> 3]! >>> ((n & 7) * 4)) & 15;
  }
  return { outC, K, segment: S, rank: r, emax, rowMask, codes, basis: stored.basis };
}
