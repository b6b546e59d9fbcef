/**
 * Calibration observers: the clipping range R of a tensor (per tensor, or per channel along axis
 * 0) from which a b-bit uniform grid is built. Signed grids are symmetric, q ∈ [−2^(b−1), 2^(b−1)−1],
 * step = R/(2^(b−1)−1); unsigned grids (tensors with no negative value, e.g. after ReLU) use
 * q ∈ [0, min(2^b−1, 127)] (the int8 kernels store codes as int8), step = R/max q.
 *
 * - minmax: R = max|x|
 * - percentile: R = the p-th percentile of |x| (default 99.99)
 * - mse: R = α·max|x| with α ∈ [0.05, 1] minimizing Σ(Q(x) − x)²
 * - entropy: R minimizing KL(P‖Q) between the |x| histogram clipped at R and its quantized
 *   version (TensorRT's calibration)
 *
 * @example
 * const r = observeRange(weights, [outC, inC * k * k], { kind: 'mse', bits: 4, perChannel: true });
 * const grid = gridFor(4, true), step = r[0] / grid.hi;
 */
import { roundHalfAway } from '../ops.js';

export const OBSERVERS = ['minmax', 'percentile', 'mse', 'entropy'] as const;
export type ObserverKind = (typeof OBSERVERS)[number];

export interface ObserverOptions {
  kind: ObserverKind;
  bits: number;
  /** One range per slice along axis 0 (weights: output channels); default one range. */
  perChannel?: boolean;
  /** Signed grid (default: signed unless every value is ≥ 0). */
  signed?: boolean;
  /** Percentile for 'percentile' (default 99.99). */
  percentile?: number;
}

/** Integer grid of a b-bit quantizer: codes lo..hi (stored as int8). */
export interface Grid {
  lo: number;
  hi: number;
}

export function gridFor(bits: number, signed: boolean): Grid {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new RangeError(`quantization bits must be an integer in 2..8, got ${bits}`);
  return signed ? { lo: -(2 ** (bits - 1)), hi: 2 ** (bits - 1) - 1 } : { lo: 0, hi: Math.min(2 ** bits - 1, 127) };
}

/** At most this many values per slice are examined (evenly strided), bounding calibration time. */
const MAX_SAMPLES = 1 << 17;

function sample(x: Float32Array, start: number, n: number): Float32Array {
  const stride = Math.max(1, Math.floor(n / MAX_SAMPLES));
  const out = new Float32Array(Math.ceil(n / stride));
  for (let i = 0, j = start; i < out.length; i++, j += stride) out[i] = x[j]!;
  return out;
}

/** Σ(Q(v) − v)² of values v on the grid with the given step. */
export function quantError(v: Float32Array, step: number, g: Grid): number {
  let e = 0;
  for (let i = 0; i < v.length; i++) {
    const q = Math.min(g.hi, Math.max(g.lo, roundHalfAway(v[i]! / step))) * step - v[i]!;
    e += q * q;
  }
  return e;
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

function percentileAbs(v: Float32Array, p: number): number {
  const a = Float32Array.from(v, Math.abs).sort();
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))]!;
}

function mseRange(v: Float32Array, g: Grid): number {
  const m = maxAbs(v);
  if (m === 0) return 0;
  let best = m, bestErr = Infinity;
  for (let a = 100; a >= 5; a -= 1) {
    const r = (m * a) / 100, e = quantError(v, r / g.hi, g);
    if (e < bestErr) [best, bestErr] = [r, e];
  }
  return best;
}

/** KL-divergence calibration over a 2048-bin histogram of |x| (TensorRT's entropy calibration). */
function entropyRange(v: Float32Array, g: Grid): number {
  const m = maxAbs(v);
  if (m === 0) return 0;
  const bins = 2048, levels = g.hi + 1, width = m / bins;
  const hist = new Float64Array(bins);
  for (let i = 0; i < v.length; i++) hist[Math.min(bins - 1, Math.floor(Math.abs(v[i]!) / width))]++;
  let best = m, bestKl = Infinity;
  for (let n = levels; n <= bins; n += Math.max(1, Math.floor(levels / 4))) {
    const p = hist.slice(0, n);
    for (let i = n; i < bins; i++) p[n - 1] += hist[i]!;
    // Q: merge the first n bins into `levels` groups, spread each group's mass over its non-empty bins.
    const q = new Float64Array(n);
    for (let l = 0; l < levels; l++) {
      const a = Math.floor((l * n) / levels), b = Math.floor(((l + 1) * n) / levels);
      let mass = 0, nonzero = 0;
      for (let i = a; i < b; i++) {
        mass += hist[i]!;
        if (hist[i]! > 0) nonzero++;
      }
      for (let i = a; i < b; i++) if (hist[i]! > 0) q[i] = mass / nonzero;
    }
    const ps = p.reduce((s, x) => s + x, 0), qs = q.reduce((s, x) => s + x, 0);
    let kl = 0;
    for (let i = 0; i < n; i++) if (p[i]! > 0) kl += (p[i]! / ps) * Math.log(p[i]! / ps / Math.max(q[i]! / qs, 1e-12));
    if (kl < bestKl) [best, bestKl] = [(n + 0.5) * width, kl];
  }
  return Math.min(best, m);
}

/** Clipping range per channel (axis 0 of `shape`) or one range for the whole tensor. */
export function observeRange(x: Float32Array, shape: readonly number[], o: ObserverOptions): Float32Array {
  const channels = o.perChannel ? shape[0]! : 1;
  const per = x.length / channels;
  const signed = o.signed ?? x.some((v) => v < 0);
  const g = gridFor(o.bits, signed);
  return Float32Array.from({ length: channels }, (_, c) => {
    const v = sample(x, c * per, per);
    switch (o.kind) {
      case 'minmax':
        return maxAbs(v);
      case 'percentile':
        return percentileAbs(v, o.percentile ?? 99.99);
      case 'mse':
        return mseRange(v, g);
      case 'entropy':
        return entropyRange(v, g);
      default:
        throw new RangeError(`unknown observer '${o.kind as string}' (available: ${OBSERVERS.join(', ')})`);
    }
  });
}

/** Per-channel symmetric quantization of weights [outC, ...]: codes on the signed b-bit grid and their steps. */
export function quantizeWeights(w: Float32Array, outC: number, bits: number, range: Float32Array): { codes: Int8Array; step: Float32Array } {
  const g = gridFor(bits, true), per = w.length / outC;
  const step = Float32Array.from(range, (r) => (r > 0 ? r / g.hi : 1));
  const codes = new Int8Array(w.length);
  for (let c = 0; c < outC; c++) for (let i = c * per; i < (c + 1) * per; i++) codes[i] = Math.min(g.hi, Math.max(g.lo, roundHalfAway(w[i]! / step[c]!)));
  return { codes, step };
}
