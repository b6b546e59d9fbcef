/**
 * Activation quantization shared by the PTQ simulation and the deployed int8 runtime, so both
 * produce the same codes: q = clamp(⌊x/s⌋ + [frac(x/s) ≥ b], lo, hi) with an AQuant rounding
 * border b (absent: round half away from zero, the int8 kernels' rounding). The border is a
 * function of the activation value, coarse-grained to its integer part f = ⌊x/s⌋: a table of
 * one border per input channel c (axis 1) and level f ∈ [lo, hi − 1] (b[c·(hi − lo) + f − lo]),
 * or one border per channel (a table of C values). Values with f outside [lo, hi − 1] clamp to
 * lo or hi whatever the border.
 *
 * @example
 * const q = quantizeActivation(x, [n, c, h, w], { step: 0.02, lo: 0, hi: 15 });
 */
import { quantizeCodes } from '../kernels.js';

export interface ActivationGrid {
  step: number;
  lo: number;
  hi: number;
  /** Rounding borders in (0, 1): C (per input channel) or C·(hi − lo) (per channel and integer level, level fastest). */
  border?: Float32Array;
}

/** Borders per channel in `border` (1 or hi − lo); throws when the table fits neither layout. */
export function bordersPerChannel(border: ArrayLike<number>, channels: number, lo: number, hi: number, what = 'quantizeActivation'): number {
  const levels = border.length / channels;
  if (levels !== 1 && levels !== hi - lo) throw new Error(`${what}: ${border.length} rounding borders for ${channels} channels (expected ${channels} or ${channels}x${hi - lo} levels)`);
  return levels;
}

export function quantizeActivation(x: Float32Array, shape: readonly number[], a: ActivationGrid): Int8Array {
  const out = new Int8Array(x.length);
  const { step, lo, hi, border } = a;
  if (!border) return quantizeCodes(x, a, out);
  const c = shape[1]!, inner = shape.slice(2).reduce((p, d) => p * d, 1), levels = bordersPerChannel(border, c, lo, hi);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]! / step, f = Math.floor(v);
    const at = (Math.floor(i / inner) % c) * levels + (levels === 1 ? 0 : Math.min(levels - 1, Math.max(0, f - lo)));
    out[i] = Math.min(hi, Math.max(lo, f + (v - f >= border[at]! ? 1 : 0)));
  }
  return out;
}
