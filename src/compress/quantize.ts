/**
 * Per-group min-max quantization with stochastic rounding (act.md §2), on plain typed arrays so
 * that it is independent of tensors and autograd.
 *
 * Layout: `rows` samples of `rowLength` elements; every row is cut into groups of `groupSize`
 * consecutive elements (the last one may be shorter), so a group never spans two samples.
 * Group g keeps (min, step) in `meta[2g], meta[2g+1]`, as fp16 (default) or fp32 numbers; element
 * codes q ∈ [0, 2^b − 1] are packed LSB-first, b ∈ {1, 2, 4, 8}, into one byte stream for the
 * whole array. Metadata costs 32/groupSize (fp16) or 64/groupSize (fp32) bits per element.
 *
 * Encode: q = clamp(floor((x − min)·(1/step) + u), 0, 2^b − 1), u ~ U(0,1) (stochastic, unbiased:
 * E[min + q·step] = x) or u = ½ (nearest), computed as the nearest integer to (x − min)·(1/step)
 * + (u − ½) with every operation rounded to float32 (min and step are float32 numbers; the wasm
 * kernel runs four lanes per SIMD step and rounds by adding 1.5·2^23): that moves the argument by
 * < 2^-14, so E[q] by less than 2^-14 of a step, and |x̂ − x| stays below step·(1 + 2^-14).
 * Decode: x̂ = min + q·step. A constant group has step 0, codes 0 and decodes to its value exactly.
 *
 * Noise: counter-based, so reproducible and independent of how the work is split. Element e of
 * a call keyed by (seed, stream, step) takes its chunk key from Philox4x32-10 (counter =
 * (e/256, step, stream, 0), key = seed) and 16 bits of a SplitMix-style finalizer of
 * (chunk key, e mod 256 / 2): u = (r + ½)/65536. One Philox block per 256 elements keeps the
 * cost near one multiply per element; the 16-bit grid moves E[q] by at most 2^-17 steps.
 */
import { philox } from '../util/rng.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';

export type FloatArray = Float32Array | Float64Array;
export type CodeBits = 1 | 2 | 4 | 8;

/** Where the rounding noise comes from; equal keys give bit-identical codes. */
export interface NoiseKey {
  seed: number;
  /** Distinguishes tensors saved within one step (e.g. the save's ordinal). */
  stream: number;
  /** Training step. */
  step: number;
}

export interface GroupLayout {
  rows: number;
  rowLength: number;
  groupSize: number;
}

export function assertCodeBits(bits: number, where: string): asserts bits is CodeBits {
  if (bits !== 1 && bits !== 2 && bits !== 4 && bits !== 8) throw new RangeError(`${where}: bits must be 1, 2, 4 or 8, got ${bits}`);
}

export function groupsPerRow(l: GroupLayout): number {
  return l.rowLength === 0 ? 0 : Math.ceil(l.rowLength / l.groupSize);
}

export function groupCount(l: GroupLayout): number {
  return l.rows * groupsPerRow(l);
}

/** Bytes of packed codes for n elements at b bits. */
export function codeBytes(n: number, bits: number): number {
  return Math.ceil((n * bits) / 8);
}

/** Precision of the per-group (min, step) metadata: 32 (exact) or 16 bits per value. */
export type MetaPrecision = 'fp32' | 'fp16';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The largest float32 at or below x. */
function floorF32(x: number): number {
  const r = Math.fround(x);
  if (r <= x) return r;
  f32[0] = r;
  if (r > 0) u32[0]! -= 1;
  else if (r === 0) return -1.401298464324817e-45;
  else u32[0]! += 1;
  return f32[0]!;
}
/** The smallest float32 at or above a non-negative x. */
function ceilF32(x: number): number {
  const r = Math.fround(x);
  if (r >= x) return r;
  f32[0] = r;
  u32[0]! += 1;
  return f32[0]!;
}
/** The largest fp16 value at or below x (-Infinity when below the fp16 range). */
function floorF16(x: number): number {
  let h = toFloat16Bits(x);
  const v = fromFloat16Bits(h);
  if (v <= x) return v;
  if (h === 0) h = 0x8001; // +0 -> the negative subnormal nearest to 0
  else h = h & 0x8000 ? h + 1 : h - 1;
  return fromFloat16Bits(h);
}
/** The smallest fp16 value at or above a non-negative x (Infinity when above the fp16 range). */
function ceilF16(x: number): number {
  const h = toFloat16Bits(x);
  const v = fromFloat16Bits(h);
  return v >= x ? v : fromFloat16Bits(h + 1);
}

/** Size in bytes of one metadata value. */
export function metaBytes(p: MetaPrecision): number {
  return p === 'fp16' ? 2 : 4;
}

/** Writes every group's (min, max) to `ranges[2g], ranges[2g+1]` (the min/max pass). */
export function groupRanges(x: FloatArray, layout: GroupLayout, ranges: Float64Array): void {
  const { rows, rowLength, groupSize } = layout;
  if (x.length !== rows * rowLength) throw new RangeError(`groupRanges: ${x.length} values do not match ${rows} rows x ${rowLength}`);
  let g = 0;
  for (let r = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = Math.min(start + groupSize, rowStart + rowLength);
      let mn = Infinity, mx = -Infinity;
      for (let i = start; i < end; i++) {
        const v = x[i]!;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      // +0 for a zero bound: the wasm kernel's SIMD lanes may meet ±0 in another order.
      ranges[2 * g] = mn + 0;
      ranges[2 * g + 1] = mx + 0;
    }
  }
}

/**
 * Turns group ranges (from `groupRanges`) into (min, step) in place, representable in `precision`
 * and such that each x of the group lies in [min, min + Q·step] (no clipping, so the rounding stays
 * unbiased). A constant group gets step 0 and its value as min (exact decode). fp16 falls back to
 * fp32 for the whole array when a value is out of fp16 range or a constant group's value is not an
 * fp16 number; the precision used is returned.
 */
export function metaFromRanges(ranges: Float64Array, bits: CodeBits, precision: MetaPrecision): MetaPrecision {
  const Q = (1 << bits) - 1;
  // fp16: a pass that only checks every group first, so that the fallback needs no copy of the ranges.
  if (precision === 'fp16' && fillMeta(ranges, Q, true, false)) {
    fillMeta(ranges, Q, true, true);
    return 'fp16';
  }
  fillMeta(ranges, Q, false, true);
  return 'fp32';
}

/**
 * (min, max) -> (min, step) per group, written back when `write`; false when a half-precision
 * group cannot be represented (each group's result depends on its own range only).
 */
function fillMeta(meta: Float64Array, Q: number, half: boolean, write: boolean): boolean {
  for (let g = 0; g < meta.length; g += 2) {
    const mn = meta[g]!, mx = meta[g + 1]!;
    // Direct calls (not floor/ceil parameters): V8 inlines them, so no float is boxed per group.
    const m = half ? floorF16(mn) : floorF32(mn);
    let step = 0;
    if (mx > m) {
      step = half ? ceilF16((mx - m) / Q) : ceilF32((mx - m) / Q);
      if (m + step * Q < mx) step = half ? ceilF16(step * (1 + 2 ** -10)) : ceilF32(step * (1 + 2 ** -10));
    }
    if (half && Number.isFinite(mn) && Number.isFinite(mx) && (!Number.isFinite(m) || !Number.isFinite(step) || (mx === mn && m !== mn))) return false;
    if (!write) continue;
    meta[g] = m;
    meta[g + 1] = step;
  }
  return true;
}

/** `groupRanges` then `metaFromRanges`: every group's (min, step) in `meta`; returns the precision used. */
export function groupMeta(x: FloatArray, layout: GroupLayout, bits: CodeBits, precision: MetaPrecision, meta: Float64Array): MetaPrecision {
  groupRanges(x, layout, meta);
  return metaFromRanges(meta, bits, precision);
}

const block = new Uint32Array(4);

/**
 * Quantizes `x` into `codes` (zero-filled, codeBytes(n, bits) long) with the metadata from
 * `groupMeta` (any (min, step) pairs of float32 numbers). With `noise` null, rounds to nearest.
 */
export function quantizeGroups(x: FloatArray, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null, meta: ArrayLike<number>, codes: Uint8Array): void {
  const { rows, rowLength, groupSize } = layout;
  const Q = (1 << bits) - 1;
  const logBits = Math.log2(bits), shift = 3 - logBits, lane = (8 >> logBits) - 1;
  let chunkKey = 0;
  const k0 = noise ? noise.seed >>> 0 : 0, k1 = noise ? Math.floor(noise.seed / 4294967296) >>> 0 : 0;
  const c1 = noise ? noise.step >>> 0 : 0, c2 = noise ? noise.stream >>> 0 : 0;
  let g = 0;
  for (let r = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = Math.min(start + groupSize, rowStart + rowLength);
      // float32 arithmetic: each f64 operation on float32 operands rounded once is the float32 result.
      const m = Math.fround(meta[2 * g]!), step = Math.fround(meta[2 * g + 1]!);
      const inv = step > 0 ? Math.fround(1 / step) : 0;
      if (!noise) {
        for (let i = start; i < end; i++) codes[i >>> shift]! |= roundCode(x[i]!, m, inv, 0, Q) << ((i & lane) << logBits);
        continue;
      }
      let h = 0;
      for (let i = start; i < end; i++) {
        if ((i & 255) === 0 || i === start) {
          philox(i >>> 8, c1, c2, 0, k0, k1, block);
          chunkKey = block[0]!;
        }
        // One 32-bit mix serves an even/odd pair of elements (16 bits each).
        if ((i & 1) === 0 || i === start) h = mix32((chunkKey + Math.imul((i & 255) >>> 1, 0x9e3779b9)) | 0);
        const u = (((i & 1 ? h : h >>> 16) & 0xffff) - 32767.5) * (1 / 65536);
        codes[i >>> shift]! |= roundCode(x[i]!, m, inv, u, Q) << ((i & lane) << logBits);
      }
    }
  }
}

/**
 * The code of x: the nearest integer (ties to even) to (x − m)·inv + u, u ∈ (−½, ½) (so floor of
 * (x − m)·inv + u + ½), clamped to [0, Q] before rounding (NaN -> 0), every operation in float32 as
 * the wasm kernel does it: adding 1.5·2^23 rounds a float32 in [−½, 2^22) to an integer.
 */
function roundCode(x: number, m: number, inv: number, u: number, Q: number): number {
  const t = Math.fround(Math.fround(Math.fround(x - m) * inv) + u);
  const c = t > -0.5 ? (t < Q ? t : Q) : -0.5;
  return Math.fround(c + 12582912) - 12582912;
}

/** SplitMix/murmur3 32-bit finalizer: a bijective mix of a counter. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Inverse of `quantizeGroups`: out[i] = min_g + q_i·step_g. */
export function dequantizeGroups(codes: Uint8Array, meta: ArrayLike<number>, layout: GroupLayout, bits: CodeBits, out: FloatArray): void {
  const { rows, rowLength, groupSize } = layout;
  const Q = (1 << bits) - 1;
  const logBits = Math.log2(bits), shift = 3 - logBits, lane = (8 >> logBits) - 1;
  let g = 0;
  for (let r = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = Math.min(start + groupSize, rowStart + rowLength);
      const mn = meta[2 * g]!, step = meta[2 * g + 1]!;
      for (let i = start; i < end; i++) out[i] = mn + ((codes[i >>> shift]! >>> ((i & lane) << logBits)) & Q) * step;
    }
  }
}

/** Bits needed for the non-negative integers up to `max` (at least 1). */
export function bitsFor(max: number): number {
  return max <= 1 ? 1 : Math.ceil(Math.log2(max + 1));
}

/** Packs non-negative integers < 2^bits (bits 1..32) LSB-first into `out` (zero-filled, codeBytes long). */
export function packInts(values: ArrayLike<number>, bits: number, out: Uint8Array): void {
  if (bits === 1) {
    for (let i = 0; i < values.length; i++) if (values[i]) out[i >>> 3]! |= 1 << (i & 7);
    return;
  }
  let pos = 0, acc = 0, accBits = 0;
  for (let i = 0; i < values.length; i++) {
    let v = values[i]!;
    let left = bits;
    // Emit in chunks of at most 16 bits so that the accumulator never exceeds 31 bits.
    while (left > 0) {
      const take = Math.min(left, 16);
      acc |= (v & ((1 << take) - 1)) << accBits;
      accBits += take;
      v = Math.floor(v / (1 << take));
      left -= take;
      while (accBits >= 8) {
        out[pos++] = acc & 0xff;
        acc >>>= 8;
        accBits -= 8;
      }
    }
  }
  if (accBits > 0) out[pos] = acc & 0xff;
}

/** Inverse of `packInts`. */
export function unpackInts(src: Uint8Array, bits: number, out: { length: number; [i: number]: number }): void {
  if (bits === 1) {
    for (let i = 0; i < out.length; i++) out[i] = (src[i >>> 3]! >>> (i & 7)) & 1;
    return;
  }
  let pos = 0, acc = 0, accBits = 0;
  for (let i = 0; i < out.length; i++) {
    let v = 0, got = 0;
    while (got < bits) {
      if (accBits === 0) {
        acc = src[pos++]!;
        accBits = 8;
      }
      const take = Math.min(bits - got, accBits);
      v += (acc & ((1 << take) - 1)) * 2 ** got;
      acc >>>= take;
      accBits -= take;
      got += take;
    }
    out[i] = v;
  }
}

/**
 * The expected squared error Σ_i E(x̂_i − x_i)² of quantizing `x` at each of `widths` with the
 * codec's own (min, step) per group: step²·f(1 − f) per element under stochastic rounding (f: the
 * fractional position of x between its two codes), the squared rounding error to the nearest code
 * otherwise. Data bunched near a code (post-ReLU zeros, softmax probabilities) cost far less than
 * the step²/4 bound, and not in proportion to 1/(2^b − 1)²: auto precision costs each width with
 * this. One range pass and one element pass serve every width.
 */
export function roundingNoiseEnergy(x: FloatArray, layout: GroupLayout, widths: readonly CodeBits[], precision: MetaPrecision, stochastic = true): number[] {
  const { rows, rowLength, groupSize } = layout;
  const ranges = new Float64Array(2 * groupCount(layout));
  groupRanges(x, layout, ranges);
  const metas = widths.map((bits) => {
    const m = Float64Array.from(ranges);
    metaFromRanges(m, bits, precision);
    return m;
  });
  const W = widths.length, Q = widths.map((b) => (1 << b) - 1);
  const e = new Array<number>(W).fill(0), mins = new Float64Array(W), invs = new Float64Array(W), sums = new Float64Array(W);
  let g = 0;
  for (let r = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = Math.min(start + groupSize, rowStart + rowLength);
      for (let w = 0; w < W; w++) {
        const step = metas[w]![2 * g + 1]!;
        mins[w] = metas[w]![2 * g]!;
        invs[w] = step > 0 ? 1 / step : 0;
        sums[w] = 0;
      }
      for (let i = start; i < end; i++) {
        const v = x[i]!;
        for (let w = 0; w < W; w++) {
          const t = Math.min(Q[w]!, Math.max(0, (v - mins[w]!) * invs[w]!));
          const f = t - Math.floor(t);
          sums[w]! += stochastic ? f * (1 - f) : Math.min(f, 1 - f) ** 2;
        }
      }
      for (let w = 0; w < W; w++) {
        const step = metas[w]![2 * g + 1]!;
        e[w]! += sums[w]! * step * step;
      }
    }
  }
  return e;
}
