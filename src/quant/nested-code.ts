/** The nested-precision integer code (shared by the fake-quantization kernels, conversion and the packed runtime). */
import { roundHalfAway } from './kernels.js';

/**
 * The nested-precision code of u (a weight divided by its 8-bit step): q8 = clamp(round(u), −128,
 * 127); reading b bits drops d = 8 − b low bits, q_b = ⌊q8 / 2^d⌋ (cascade downsampling), and the
 * code stands for the centre of the 2^d codes it covers, 2^d·q_b + 2^(d−1) (d ≥ 1), so the levels
 * stay symmetric. d = 0 gives q8 itself. Every result fits in int8.
 *
 * @example
 * nestedCode(100.4, 0);   // 100 (the stored 8-bit code)
 * nestedCode(100, 6);     // 96 = 64·⌊100/64⌋ + 32 (the 2-bit read)
 */
export function nestedCode(u: number, drop: number): number {
  const q = Math.min(127, Math.max(-128, roundHalfAway(u))) + 0; // + 0: no −0 codes
  if (drop === 0) return q;
  const step = 2 ** drop;
  return Math.floor(q / step) * step + step / 2;
}
