/**
 * Activation quantization shared by the PTQ simulation and the deployed int8 runtime, so both
 * produce the same codes: q = clamp(⌊x/s⌋ + [frac(x/s) ≥ b_c], lo, hi) with the rounding border
 * b_c of input channel c (AQuant; absent: round half away from zero, the int8 kernels' rounding).
 *
 * @example
 * const q = quantizeActivation(x, [n, c, h, w], { step: 0.02, lo: 0, hi: 15 });
 */
import { quantizeCodes } from '../kernels.js';

export interface ActivationGrid {
  step: number;
  lo: number;
  hi: number;
  /** Rounding border per input channel (axis 1), in (0, 1). */
  border?: Float32Array;
}

export function quantizeActivation(x: Float32Array, shape: readonly number[], a: ActivationGrid): Int8Array {
  const out = new Int8Array(x.length);
  const { step, lo, hi, border } = a;
  if (!border) return quantizeCodes(x, a, out);
  const c = shape[1]!, inner = shape.slice(2).reduce((p, d) => p * d, 1);
  if (border.length !== c) throw new Error(`quantizeActivation: ${border.length} rounding borders for ${c} channels`);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]! / step, f = Math.floor(v);
    out[i] = Math.min(hi, Math.max(lo, f + (v - f >= border[Math.floor(i / inner) % c]! ? 1 : 0)));
  }
  return out;
}
