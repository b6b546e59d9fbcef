/**
 * SmartDeal's reference kernels (the contract's smartdealGemm, smartdealProject and smartdealCodes;
 * src/backends/kernels.ts) and the coefficient-code arithmetic they share with smartdeal.ts. No
 * runtime imports: the reference backend loads this module before any backend exists.
 */
import type { FloatArray } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import type { SmartDealFactors } from './smartdeal.js';

/** Power-of-two magnitudes a coefficient can take (4-bit codes: zero, sign, 7 exponents). */
export const SMARTDEAL_LEVELS = 7;

/** Value of a coefficient code. */
export const coeffValue = (code: number, emax: number): number => (code === 0 ? 0 : (code & 8 ? -1 : 1) * 2 ** (emax - ((code & 7) - 1)));

/**
 * Magnitude thresholds of the power-of-two codes given emax: ±2^e is the nearest level (in the
 * log domain) for |c| in [1.5·2^(e−1), 1.5·2^e), clamped to [emin, emax]; below half the smallest
 * level, zero. t[0] = 2^emin / 2, t[1 + j] = 1.5·2^(emin + j) (all exact in float64).
 */
export function pow2Thresholds(emax: number): Float64Array {
  const emin = emax - SMARTDEAL_LEVELS + 1, t = new Float64Array(SMARTDEAL_LEVELS);
  t[0] = 2 ** emin / 2;
  for (let j = 0; j < SMARTDEAL_LEVELS - 1; j++) t[1 + j] = 1.5 * 2 ** (emin + j);
  return t;
}

/** The power-of-two code of c (nearest level, 0 below half the smallest; NaN gives 0) under pow2Thresholds(emax). */
function pow2Code(c: number, t: Float64Array): number {
  const a = Math.abs(c);
  if (!(a >= t[0]!)) return 0;
  let j = 0; // levels above emin
  while (j < SMARTDEAL_LEVELS - 1 && a >= t[1 + j]!) j++;
  return (c < 0 ? 8 : 0) + SMARTDEAL_LEVELS - j;
}

/** Values of the 16 codes given emax (indexed by code; 0 for code 0). */
export function codeValues(emax: number): Float64Array {
  const v = new Float64Array(16);
  for (let c = 1; c < 16; c++) v[c] = coeffValue(c, emax);
  return v;
}

/** Rows, segment and rank of the smartdeal kernels' arguments, checked (RangeError naming the op). */
export function projectionShape(op: string, w: Tensor, p: Tensor, codes?: Tensor, sums?: Tensor | null): [rows: number, S: number, r: number] {
  for (const t of [w, p, codes, sums]) t?.assertAlive(op);
  const rows = w.shape[0] ?? 0, S = w.shape[1] ?? 0, r = p.shape[0] ?? 0;
  if (w.rank !== 2 || p.rank !== 2 || p.shape[1] !== S || p.dtype !== 'float64') throw new RangeError(`${op}: w must be [rows, S] and p float64 [r, S], got ${w.dtype} [${w.shape}] and ${p.dtype} [${p.shape}]`);
  if (codes && (codes.dtype !== 'int32' || codes.size !== rows * r)) throw new RangeError(`${op}: codes must be int32 [${rows}, ${r}], got ${codes.dtype} [${codes.shape}]`);
  if (sums && (sums.dtype !== 'float64' || sums.size !== r * r + r * S)) throw new RangeError(`${op}: sums must be float64 of ${r * r + r * S} elements, got ${sums.dtype} [${sums.shape}]`);
  return [rows, S, r];
}

/** Reference of the smartdealProject kernel (src/backends/kernels.ts). */
export function smartdealProject(w: Tensor, p: Tensor): number {
  const [rows, S, r] = projectionShape('smartdealProject', w, p);
  const wv = w.values() as FloatArray, pv = p.values() as Float64Array;
  let maxAbs = 0;
  for (let i = 0; i < rows; i++) {
    for (let t = 0; t < r; t++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += wv[i * S + j]! * pv[t * S + j]!;
      maxAbs = Math.max(maxAbs, Math.abs(s));
    }
  }
  return maxAbs;
}

/** Reference of the smartdealCodes kernel (src/backends/kernels.ts). */
export function smartdealCodes(w: Tensor, p: Tensor, codes: Tensor, sums: Tensor | null, emax: number): number {
  const [rows, S, r] = projectionShape('smartdealCodes', w, p, codes, sums);
  const wv = w.values() as FloatArray, pv = p.values() as Float64Array, cd = codes.data() as Int32Array;
  const sv = sums?.data() as Float64Array | undefined, th = pow2Thresholds(emax), cv = codeValues(emax);
  let changed = 0;
  for (let i = 0; i < rows; i++) {
    for (let t = 0; t < r; t++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += wv[i * S + j]! * pv[t * S + j]!;
      const c = pow2Code(s, th);
      if (c !== cd[i * r + t]) changed++;
      cd[i * r + t] = c;
    }
    if (!sv) continue;
    for (let a = 0; a < r; a++) {
      const ca = cv[cd[i * r + a]!]!;
      if (ca === 0) continue;
      for (let b = 0; b < r; b++) sv[a * r + b] += ca * cv[cd[i * r + b]!]!;
      for (let j = 0; j < S; j++) sv[r * r + a * S + j] += ca * wv[i * S + j]!;
    }
  }
  return changed;
}

/**
 * y [rows, outC] = x [rows, K] · (Ce·B)ᵀ computed on the factors: z = B·x_segment for each of
 * the ⌈K/S⌉ input segments (shared by every output channel), then y_o = Σ over o's kept segments
 * of Σ_t Ce[seg, t]·z[seg, t] (powers of two: a shift-and-add in fixed point). MACs: rows·(K·r +
 * kept·r) instead of rows·outC·K. The reference of the contract's smartdealGemm (the wasm one
 * runs segment = rank = 4 with f32x4).
 */
export function smartdealGemm(f: SmartDealFactors, x: Float32Array, rows: number): Float32Array {
  const { outC, K, segment: S, rank: r } = f, G = Math.ceil(K / S), out = new Float32Array(rows * outC);
  const { keptO, keptG, coeffs } = keptLists(f), kept = keptO.length;
  const z = new Float64Array(G * r), acc = new Float64Array(outC), basis = f.basis;
  for (let n = 0; n < rows; n++) {
    const xo = n * K;
    for (let g = 0; g < G; g++) {
      const len = Math.min(S, K - g * S), xs = xo + g * S;
      for (let t = 0; t < r; t++) {
        let s = 0;
        for (let j = 0; j < len; j++) s += basis[t * S + j]! * x[xs + j]!;
        z[g * r + t] = s;
      }
    }
    acc.fill(0);
    for (let e = 0; e < kept; e++) {
      const zg = keptG[e]! * r, ce = e * r;
      let s = 0;
      for (let t = 0; t < r; t++) s += coeffs[ce + t]! * z[zg + t]!;
      acc[keptO[e]!] += s;
    }
    out.set(acc, n * outC);
  }
  return out;
}

const keptCache = new WeakMap<SmartDealFactors, KeptRows>();

/** Kept rows of a decomposition: output channel (ascending) and segment of each, and its coefficient values [kept, rank]. */
export interface KeptRows {
  keptO: Int32Array;
  keptG: Int32Array;
  coeffs: Float32Array;
}

/** The kept rows of a decomposition as (output channel, segment, coefficient values) lists, cached. */
export function keptLists(f: SmartDealFactors): KeptRows {
  let k = keptCache.get(f);
  if (!k) {
    const G = Math.ceil(f.K / f.segment), r = f.rank, rows = [...f.rowMask.keys()].filter((i) => f.rowMask[i]);
    k = {
      keptO: Int32Array.from(rows, (i) => Math.floor(i / G)),
      keptG: Int32Array.from(rows, (i) => i % G),
      coeffs: Float32Array.from({ length: rows.length * r }, (_, j) => coeffValue(f.codes[rows[Math.floor(j / r)]! * r + (j % r)]!, f.emax)),
    };
    keptCache.set(f, k);
  }
  return k;
}
