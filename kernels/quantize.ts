// Stochastic-rounding group quantizer (src/compress/quantize.ts `quantizeGroups`), bit for bit:
// same Philox4x32-10 chunk keys, same SplitMix-style finalizer per element pair, same float32
// arithmetic, same clamping. x: float32 [rows * rowLength]; meta: float64 (min, step) per group;
// codes: zero-filled, LSB-first, bits in {1, 2, 4, 8}. Every kernel here covers rows [rowFrom, rowTo)
// of the array (element indices stay global), so the pool can split the rows.

import { fromF16, toF16 } from './f16';

const M0: u32 = 0xd2511f53;
const M1: u32 = 0xcd9e8d57;
const W0: u32 = 0x9e3779b9;
const W1: u32 = 0xbb67ae85;

/** Word 0 of the Philox4x32-10 block for counter (c0, c1, c2, c3) and key (k0, k1). */
function philoxWord0(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32): u32 {
  for (let r = 0; r < 10; r++) {
    const p0 = <u64>M0 * <u64>c0;
    const p1 = <u64>M1 * <u64>c2;
    const n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    const n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  return c0;
}

// @ts-ignore: decorator
@inline function mix32(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x85ebca6b;
  x ^= x >> 13;
  x *= 0xc2b2ae35;
  return x ^ (x >> 16);
}

export function quantizeGroups(
  x: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, meta: usize, codes: usize,
): void {
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      const m = load<f64>(meta + (<usize>(2 * g) << 3));
      const stepSize = load<f64>(meta + (<usize>(2 * g + 1) << 3));
      quantizeGroup(x, start, end, m, stepSize, bits, noise, seedLo, seedHi, step, stream, codes);
    }
  }
}

/**
 * groupRanges, metaFromRanges and quantizeGroups of src/compress/quantize.ts in one pass per group
 * (the group is read from memory once, then from cache), bit for bit: its (min, step) in fp16
 * (half != 0) or fp32, stored to meta as float64 pairs, and its codes. With half, a group that fp16
 * cannot represent stores 1 at `status` and the call stops: the caller redoes the whole array in
 * fp32, as metaFromRanges falls back for the whole array.
 */
export function groupQuantize(
  x: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, half: i32, meta: usize, codes: usize, status: usize,
): void {
  const Q = <f64>((1 << bits) - 1);
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      minMax(x, start, end);
      const mn = <f64>rangeMin + 0.0, mx = <f64>rangeMax + 0.0;
      // fillMeta of quantize.ts for one group.
      const m = half ? floorF16(mn) : floorF32(mn);
      let stepSize = 0.0;
      if (mx > m) {
        stepSize = half ? ceilF16((mx - m) / Q) : ceilF32((mx - m) / Q);
        if (m + stepSize * Q < mx) stepSize = half ? ceilF16(stepSize * (1 + 1.0 / 1024)) : ceilF32(stepSize * (1 + 1.0 / 1024));
      }
      if (half && isFinite(mn) && isFinite(mx) && (!isFinite(m) || !isFinite(stepSize) || (mx == mn && m != mn))) {
        store<i32>(status, 1);
        return;
      }
      store<f64>(meta + (<usize>(2 * g) << 3), m);
      store<f64>(meta + (<usize>(2 * g + 1) << 3), stepSize);
      quantizeGroup(x, start, end, m, stepSize, bits, noise, seedLo, seedHi, step, stream, codes);
    }
  }
}

/** Codes of elements [start, end) of one group with its (min, step). */
function quantizeGroup(
  x: usize, start: i32, end: i32, mf: f64, stepSize: f64, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, codes: usize,
): void {
  // float32 arithmetic (four lanes per SIMD step): min and step are float32 numbers (fp16 or fp32 metadata).
  const m = <f32>mf, inv: f32 = stepSize > 0 ? <f32>1 / <f32>stepSize : 0;
  if (ASC_FEATURE_SIMD) {
    // Scalar up to a 16-element boundary, 16 at a time (whole code bytes), scalar tail.
    let i = min((start + 15) & ~15, end);
    quantizeRun(x, start, i, m, inv, bits, noise, seedLo, seedHi, step, stream, codes);
    if (i + 16 <= end) i = quantize16(x, i, end, m, inv, bits, noise, seedLo, seedHi, step, stream, codes);
    quantizeRun(x, i, end, m, inv, bits, noise, seedLo, seedHi, step, stream, codes);
  } else quantizeRun(x, start, end, m, inv, bits, noise, seedLo, seedHi, step, stream, codes);
}

/** The largest float32 at or below x (floorF32 in quantize.ts). */
function floorF32(x: f64): f64 {
  const r = <f32>x;
  if (<f64>r <= x) return r;
  if (r > 0) return reinterpret<f32>(reinterpret<u32>(r) - 1);
  if (r == 0) return -1.401298464324817e-45;
  return reinterpret<f32>(reinterpret<u32>(r) + 1);
}

/** The smallest float32 at or above a non-negative x (ceilF32 in quantize.ts). */
function ceilF32(x: f64): f64 {
  const r = <f32>x;
  if (<f64>r >= x) return r;
  return reinterpret<f32>(reinterpret<u32>(r) + 1);
}

/** The largest fp16 value at or below x (floorF16 in quantize.ts; -Infinity below the fp16 range). */
function floorF16(x: f64): f64 {
  let h = toF16(reinterpret<u32>(<f32>x));
  const v = <f64>fromF16(h);
  if (v <= x) return v;
  if (h == 0) h = 0x8001; // +0 -> the negative subnormal nearest to 0
  else h = h & 0x8000 ? h + 1 : h - 1;
  return fromF16(h);
}

/** The smallest fp16 value at or above a non-negative x (ceilF16 in quantize.ts; Infinity above the range). */
function ceilF16(x: f64): f64 {
  const h = toF16(reinterpret<u32>(<f32>x));
  const v = <f64>fromF16(h);
  return v >= x ? v : <f64>fromF16(h + 1);
}

/** Elements [from, to) of one group, one at a time (codes ORed into zero-filled bytes). */
function quantizeRun(
  x: usize, from: i32, to: i32, m: f32, inv: f32, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, codes: usize,
): void {
  if (from >= to) return;
  const Q = (1 << bits) - 1;
  const logBits = bits == 1 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : 3;
  const shift = 3 - logBits, lane = (8 >> logBits) - 1;
  const fq = <f32>Q;
  if (!noise) {
    for (let i = from; i < to; i++) put(codes, i, code(x, i, m, inv, 0, fq), lane, shift, logBits);
    return;
  }
  // Element pairs (2j, 2j + 1) share one 32-bit mix: high half for the even element.
  let chunkKey = philoxWord0(<u32>from >>> 8, step, stream, 0, seedLo, seedHi);
  let i = from;
  if (i & 1) {
    const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
    put(codes, i, code(x, i, m, inv, noiseOf(h & 0xffff), fq), lane, shift, logBits);
    i++;
  }
  for (; i + 1 < to; i += 2) {
    if ((i & 255) == 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi);
    const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
    const q0 = code(x, i, m, inv, noiseOf(h >>> 16), fq);
    const q1 = code(x, i + 1, m, inv, noiseOf(h & 0xffff), fq);
    // At 4 and 8 bits an even-aligned pair owns its bytes: store without reading them back.
    if (bits == 4) store<u8>(codes + (<usize>i >>> 1), <u8>(q0 | (q1 << 4)));
    else if (bits == 8) store<u16>(codes + <usize>i, <u16>(q0 | (q1 << 8)));
    else {
      put(codes, i, q0, lane, shift, logBits);
      put(codes, i + 1, q1, lane, shift, logBits);
    }
  }
  if (i < to) {
    if ((i & 255) == 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi);
    const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
    put(codes, i, code(x, i, m, inv, noiseOf(h >>> 16), fq), lane, shift, logBits);
  }
}

/**
 * SIMD body of quantizeGroups from a 16-aligned element i while 16 elements remain before `end`:
 * the same float32 arithmetic and noise per element as `code`/`quantizeRun`, four lanes at a time, and
 * whole code bytes stored (16 elements never share a byte with a neighbour). Returns where it stopped.
 */
function quantize16(
  x: usize, i: i32, end: i32, m: f32, inv: f32, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, codes: usize,
): i32 {
  const mv = f32x4.splat(m), invv = f32x4.splat(inv), qv = f32x4.splat(<f32>((1 << bits) - 1));
  const center = f32x4.splat(32767.5), scale = f32x4.splat(1.0 / 65536), zero = f32x4.splat(0);
  const pairLanes = i32x4(0, 1, 2, 3), golden = i32x4.splat(0x9e3779b9);
  let chunkKey: u32 = 0;
  if (noise && (i & 255) != 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi); // else the loop's first step does
  for (; i + 16 <= end; i += 16) {
    let u0 = zero, u1 = zero, u2 = zero, u3 = zero;
    if (noise) {
      if ((i & 255) == 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi);
      // Pairs p..p+7 (elements i..i+15): mix32 of chunkKey + pair * golden, rotated by 16 bits so
      // that the 16-bit halves fall in element order (even element: high half).
      const p = i32x4.add(i32x4.splat((i & 255) >>> 1), pairLanes);
      const h0 = rot16(mix32x4(i32x4.add(i32x4.splat(chunkKey), i32x4.mul(p, golden))));
      const h1 = rot16(mix32x4(i32x4.add(i32x4.splat(chunkKey), i32x4.mul(i32x4.add(p, i32x4.splat(4)), golden))));
      // (r − 32767.5) / 65536 is exact in float32 (17 significant bits).
      u0 = noise4(i32x4.extend_low_i16x8_u(h0), center, scale);
      u1 = noise4(i32x4.extend_high_i16x8_u(h0), center, scale);
      u2 = noise4(i32x4.extend_low_i16x8_u(h1), center, scale);
      u3 = noise4(i32x4.extend_high_i16x8_u(h1), center, scale);
    }
    const at = x + (<usize>i << 2);
    const c0 = codes4(v128.load(at), mv, invv, u0, qv);
    const c1 = codes4(v128.load(at, 16), mv, invv, u1, qv);
    const c2 = codes4(v128.load(at, 32), mv, invv, u2, qv);
    const c3 = codes4(v128.load(at, 48), mv, invv, u3, qv);
    // 16 codes as bytes in element order, then packed LSB-first.
    const b = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3));
    if (bits == 8) v128.store(codes + <usize>i, b);
    else if (bits == 4) {
      const w = v128.or(b, i16x8.shr_u(b, 4));
      v128.store64_lane(codes + (<usize>i >>> 1), i8x16.shuffle(w, w, 0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0), 0);
    } else if (bits == 2) {
      const w = v128.or(v128.or(b, i32x4.shr_u(b, 6)), v128.or(i32x4.shr_u(b, 12), i32x4.shr_u(b, 18)));
      v128.store32_lane(codes + (<usize>i >>> 2), i8x16.shuffle(w, w, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0);
    } else store<u16>(codes + (<usize>i >>> 3), <u16>i8x16.bitmask(i8x16.shl(b, 7)));
  }
  return i;
}

// @ts-ignore: decorator
@inline function mix32x4(v: v128): v128 {
  v = v128.xor(v, i32x4.shr_u(v, 16));
  v = i32x4.mul(v, i32x4.splat(0x85ebca6b));
  v = v128.xor(v, i32x4.shr_u(v, 13));
  v = i32x4.mul(v, i32x4.splat(0xc2b2ae35));
  return v128.xor(v, i32x4.shr_u(v, 16));
}

// @ts-ignore: decorator
@inline function rot16(v: v128): v128 {
  return v128.or(i32x4.shl(v, 16), i32x4.shr_u(v, 16));
}

/** Lanes 2 and 3 of an i32x4 moved to lanes 0 and 1. */
// @ts-ignore: decorator
@inline function hi64(v: v128): v128 {
  return i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}

/** noiseOf on four u16 lanes (as i32), as f32x4. */
// @ts-ignore: decorator
@inline function noise4(r: v128, center: v128, scale: v128): v128 {
  return f32x4.mul(f32x4.sub(f32x4.convert_i32x4_s(r), center), scale);
}

/** `code` on four float32 lanes with noise u. */
// @ts-ignore: decorator
@inline function codes4(v: v128, mv: v128, invv: v128, u: v128, qv: v128): v128 {
  const t = f32x4.add(f32x4.mul(f32x4.sub(v, mv), invv), u);
  // pmax(lo, t) = lo < t ? t : lo (NaN -> lo), pmin(q, t) = t < q ? t : q: the clamp of `code`.
  const c = f32x4.pmin(qv, f32x4.pmax(f32x4.splat(-0.5), t));
  return i32x4.sub(f32x4.add(c, f32x4.splat(ROUNDER)), i32x4.splat(ROUNDER_BITS));
}

// 1.5·2^23: a float32 in [−½, 2^22) plus this is rounded to an integer k, with bits ROUNDER_BITS + k.
const ROUNDER: f32 = 12582912;
const ROUNDER_BITS: i32 = 0x4b400000;

/** u = (r + ½)/65536 − ½: the noise of element rounding, centred (see `code`). */
// @ts-ignore: decorator
@inline function noiseOf(r: u32): f32 {
  return (<f32>r - 32767.5) * (1.0 / 65536);
}

/**
 * The nearest integer (ties to even) to (x − m)·inv + u, clamped to [0, Q] (NaN -> 0), in float32:
 * with u ∈ (−½, ½) that is floor((x − m)·inv + u + ½) (roundCode in quantize.ts).
 */
// @ts-ignore: decorator
@inline function code(x: usize, i: i32, m: f32, inv: f32, u: f32, fq: f32): i32 {
  const t = (load<f32>(x + (<usize>i << 2)) - m) * inv + u;
  const c = t > -0.5 ? (t < fq ? t : fq) : <f32>-0.5;
  return <i32>((c + ROUNDER) - ROUNDER);
}

// @ts-ignore: decorator
@inline function put(codes: usize, i: i32, q: i32, lane: i32, shift: i32, logBits: i32): void {
  const at = codes + (<usize>i >>> shift);
  store<u8>(at, load<u8>(at) | <u8>(q << ((i & lane) << logBits)));
}

/**
 * The min/max pass: (min, max) of every group as float64 pairs in `ranges` (groupRanges in
 * quantize.ts). NaN is skipped; a zero result is stored as +0 (lanes may meet ±0 in another order).
 */
export function groupRanges(x: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, ranges: usize): void {
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      minMax(x, start, min(start + groupSize, rowStart + rowLength));
      store<f64>(ranges + (<usize>(2 * g) << 3), <f64>rangeMin + 0.0);
      store<f64>(ranges + (<usize>(2 * g + 1) << 3), <f64>rangeMax + 0.0);
    }
  }
}

// minMax's results (an instance's globals: every pool thread has its own instance).
let rangeMin: f32 = 0;
let rangeMax: f32 = 0;

/** (min, max) of elements [start, end) into rangeMin, rangeMax; NaN is skipped (±Infinity when all are). */
function minMax(x: usize, start: i32, end: i32): void {
  let mn: f32 = Infinity, mx: f32 = -Infinity;
  let i = start;
  if (ASC_FEATURE_SIMD && i + 4 <= end) {
    // pmin/pmax keep the accumulator on NaN, as the scalar comparisons do.
    let vmn = f32x4.splat(Infinity), vmx = f32x4.splat(-Infinity);
    for (; i + 4 <= end; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      vmn = f32x4.pmin(vmn, v);
      vmx = f32x4.pmax(vmx, v);
    }
    mn = min(min(f32x4.extract_lane(vmn, 0), f32x4.extract_lane(vmn, 1)), min(f32x4.extract_lane(vmn, 2), f32x4.extract_lane(vmn, 3)));
    mx = max(max(f32x4.extract_lane(vmx, 0), f32x4.extract_lane(vmx, 1)), max(f32x4.extract_lane(vmx, 2), f32x4.extract_lane(vmx, 3)));
  }
  for (; i < end; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  rangeMin = mn;
  rangeMax = mx;
}

/**
 * Inverse of quantizeGroups (dequantizeGroups in quantize.ts), bit for bit: out[i] =
 * f32(f64(min) + f64(q) * f64(step)). meta: float32 (min, step) per group; out: float32.
 */
export function dequantizeGroups(codes: usize, meta: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, bits: i32, out: usize): void {
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      const mn = <f64>load<f32>(meta + (<usize>(2 * g) << 2));
      const stepSize = <f64>load<f32>(meta + (<usize>(2 * g + 1) << 2));
      if (ASC_FEATURE_SIMD && bits != 1) {
        let i = min((start + 15) & ~15, end);
        dequantizeRun(codes, start, i, mn, stepSize, bits, out);
        if (i + 16 <= end) i = dequantize16(codes, i, end, mn, stepSize, bits, out);
        dequantizeRun(codes, i, end, mn, stepSize, bits, out);
      } else dequantizeRun(codes, start, end, mn, stepSize, bits, out);
    }
  }
}

function dequantizeRun(codes: usize, from: i32, to: i32, mn: f64, stepSize: f64, bits: i32, out: usize): void {
  const Q = (1 << bits) - 1;
  const logBits = bits == 1 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : 3;
  const shift = 3 - logBits, lane = (8 >> logBits) - 1;
  for (let i = from; i < to; i++) {
    const q = (<i32>load<u8>(codes + (<usize>i >>> shift)) >> ((i & lane) << logBits)) & Q;
    store<f32>(out + (<usize>i << 2), <f32>(mn + <f64>q * stepSize));
  }
}

/**
 * SIMD body of dequantizeGroups from a 16-aligned i: at 2 and 4 bits the group's 2^b decoded
 * values are computed once (the same f64 expression) and looked up with swizzles; at 8 bits the
 * f64 expression runs two lanes at a time. Returns where it stopped.
 */
function dequantize16(codes: usize, i: i32, end: i32, mn: f64, stepSize: f64, bits: i32, out: usize): i32 {
  if (bits == 2 || bits == 4) {
    // A 16-entry table indexed by t, staged in the first 16 outputs (64 bytes, overwritten below):
    // at 4 bits t is the code; at 2 bits t is q (even lanes of a code byte's 4 fields) or 4q (odd
    // lanes), so entries 0-3 and 4, 8, 12 hold the 4 values. Split into four byte planes: plane j
    // holds byte j of every entry.
    const dst0 = out + (<usize>i << 2);
    for (let t = 0; t < 16; t++) {
      const q = bits == 4 || t < 4 ? t : t >> 2;
      store<f32>(dst0 + (<usize>t << 2), <f32>(mn + <f64>q * stepSize));
    }
    const v0 = v128.load(dst0), v1 = v128.load(dst0, 16), v2 = v128.load(dst0, 32), v3 = v128.load(dst0, 48);
    // Bytes grouped by position within each vector, then a 4x4 transpose of the 32-bit groups.
    const byPos = i8x16(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const t0 = i8x16.swizzle(v0, byPos), t1 = i8x16.swizzle(v1, byPos), t2 = i8x16.swizzle(v2, byPos), t3 = i8x16.swizzle(v3, byPos);
    const a01 = v128.shuffle<i32>(t0, t1, 0, 4, 1, 5), a23 = v128.shuffle<i32>(t2, t3, 0, 4, 1, 5);
    const c01 = v128.shuffle<i32>(t0, t1, 2, 6, 3, 7), c23 = v128.shuffle<i32>(t2, t3, 2, 6, 3, 7);
    const p0 = v128.shuffle<i64>(a01, a23, 0, 2), p1 = v128.shuffle<i64>(a01, a23, 1, 3);
    const p2 = v128.shuffle<i64>(c01, c23, 0, 2), p3 = v128.shuffle<i64>(c01, c23, 1, 3);
    const low = i8x16.splat(15);
    // 2 bits: each code byte copied to 4 lanes; fields 0 and 1 masked in place (q, 4q), fields 2 and 3 after a shift by 4.
    const byteOfLane = i8x16(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const fields01 = i8x16(3, 12, 0, 0, 3, 12, 0, 0, 3, 12, 0, 0, 3, 12, 0, 0), fields23 = i8x16(0, 0, 3, 12, 0, 0, 3, 12, 0, 0, 3, 12, 0, 0, 3, 12);
    for (; i + 16 <= end; i += 16) {
      let c: v128;
      if (bits == 4) {
        const packed = v128.load64_zero(codes + (<usize>i >>> 1));
        c = i8x16.shuffle(v128.and(packed, low), i8x16.shr_u(packed, 4), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      } else {
        const each = i8x16.swizzle(v128.load32_zero(codes + (<usize>i >>> 2)), byteOfLane);
        c = v128.or(v128.and(each, fields01), v128.and(i8x16.shr_u(each, 4), fields23));
      }
      const b0 = i8x16.swizzle(p0, c), b1 = i8x16.swizzle(p1, c), b2 = i8x16.swizzle(p2, c), b3 = i8x16.swizzle(p3, c);
      const lo01 = i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi01 = i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const lo23 = i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi23 = i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const dst = out + (<usize>i << 2);
      v128.store(dst, i8x16.shuffle(lo01, lo23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
      v128.store(dst, i8x16.shuffle(lo01, lo23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
      v128.store(dst, i8x16.shuffle(hi01, hi23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), 32);
      v128.store(dst, i8x16.shuffle(hi01, hi23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 48);
    }
    return i;
  }
  // 8 bits.
  const mv = f64x2.splat(mn), sv = f64x2.splat(stepSize);
  for (; i + 4 <= end; i += 4) {
    const q = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(codes + <usize>i)));
    const lo = f32x4.demote_f64x2_zero(f64x2.add(mv, f64x2.mul(f64x2.convert_low_i32x4_u(q), sv)));
    const hi = f32x4.demote_f64x2_zero(f64x2.add(mv, f64x2.mul(f64x2.convert_low_i32x4_u(hi64(q)), sv)));
    v128.store(out + (<usize>i << 2), i8x16.shuffle(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
  }
  return i;
}


/** Packs a 0/1 uint8 mask into bits, LSB-first (every byte of `bits` written); returns the index of the first value that is not 0 or 1, or -1. */
export function packMask(mask: usize, n: i32, bits: usize): i32 {
  const whole = n & ~7;
  for (let i = 0; i < whole; i += 8) {
    const v = load<u64>(mask + <usize>i);
    if (v & 0xfefefefefefefefe) return firstBad(mask, i, n);
    // Gather bit 0 of each byte into one byte: the multiply moves byte k's bit to bit 56 + k.
    store<u8>(bits + (<usize>i >>> 3), <u8>((v * 0x0102040810204080) >> 56));
  }
  if (whole < n) {
    let b: u32 = 0;
    for (let i = whole; i < n; i++) {
      const v = <u32>load<u8>(mask + <usize>i);
      if (v > 1) return i;
      b |= v << <u32>(i & 7);
    }
    store<u8>(bits + (<usize>whole >>> 3), <u8>b);
  }
  return -1;
}

function firstBad(mask: usize, from: i32, n: i32): i32 {
  for (let i = from; i < n; i++) if (load<u8>(mask + <usize>i) > 1) return i;
  return -1;
}

/** Inverse of packMask: n 0/1 bytes from LSB-first bits. */
export function unpackMask(bits: usize, n: i32, mask: usize): void {
  const whole = n & ~7;
  for (let i = 0; i < whole; i += 8) {
    const b = <u64>load<u8>(bits + (<usize>i >>> 3));
    // Spread bit k to byte k: replicate the byte into all 8 lanes, keep bit k in lane k.
    const spread = ((b * 0x0101010101010101) & 0x8040201008040201);
    store<u64>(mask + <usize>i, ((spread + 0x00406070787c7e7f) >> 7) & 0x0101010101010101);
  }
  for (let i = whole; i < n; i++) store<u8>(mask + <usize>i, <u8>((load<u8>(bits + (<usize>i >>> 3)) >> <u8>(i & 7)) & 1));
}
