// COMET / SZ error-bounded codec of activation compression (src/compress/comet.ts), bit for bit:
// per chunk of CHUNK values (prediction restarting from 0), per block of BLOCK values the Lorenzo
// or the zero predictor, whichever has the smaller estimated residuals, linear quantization into bins of
// 2·eb, zig-zag, Golomb-Rice with the block's best k; escapes store the float32 bits (NaN as
// 0x7fc00000). Same IEEE operations as the TypeScript oracle (floor(v + 0.5), no log2), so the
// streams are identical. Every kernel covers chunks [from, to), so the pool can split them.

const BLOCK: i32 = 256;
const CHUNK: i32 = 256 * BLOCK;
const ESCAPE: i32 = 24;
const MAX_K: i32 = 29;
const NO_Q: u32 = 0xffffffff; // an escape in a candidate's index list
/** The block scratch at the end of each chunk's region (src/compress/comet.ts COMET_SCRATCH): q and rec. */
const SCRATCH: i32 = 2 * BLOCK * 4;

// The sum of the last block's indices (an instance's global: every pool thread has its own instance).
let indexSum: u64 = 0;

/**
 * comet.ts `zeroPredicts` (Σ|round(x/2eb)| <= Σ|round((x_i − x_{i−1})/2eb)| over the block) fused
 * with the zero predictor's quantization into q and rec (and indexSum), which the block then keeps
 * unless Lorenzo wins.
 */
function zeroPredicts(x: usize, start: i32, end: i32, prev: f32, bound: f32, q: usize, rec: usize): bool {
  const width = 2.0 * <f64>bound;
  const inv = bound > 0 ? 1.0 / width : 0.0;
  const b = <f64>bound;
  let zero = 0.0, lorenzo = 0.0, last = <f64>prev;
  let sum: u64 = 0;
  for (let i = start; i < end; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    const idx = Math.floor(v * inv + 0.5);
    zero += Math.abs(idx);
    lorenzo += Math.abs(Math.floor((v - last) * inv + 0.5));
    last = v;
    const r = <f32>(width * idx);
    const j = <usize>(i - start) << 2;
    if (Math.abs(v - <f64>r) <= b && Math.abs(idx) < 1073741824.0) {
      const qi: u32 = idx >= 0 ? <u32>(2.0 * idx) : <u32>(-2.0 * idx - 1.0);
      store<u32>(q + j, qi);
      sum += qi;
      store<f32>(rec + j, r);
    } else {
      store<u32>(q + j, NO_Q);
      store<f32>(rec + j, <f32>v);
    }
  }
  indexSum = sum;
  return zero <= lorenzo;
}

/** Quantizes x[start, end) against the Lorenzo predictor from `prev` into q (u32 zig-zag indices, NO_Q = escape), rec (f32 reconstructions) and indexSum. */
function lorenzoBlock(x: usize, start: i32, end: i32, prev: f32, bound: f32, q: usize, rec: usize): void {
  const width = 2.0 * <f64>bound;
  const inv = bound > 0 ? 1.0 / width : 0.0;
  const b = <f64>bound;
  let p = prev;
  let sum: u64 = 0;
  for (let i = start; i < end; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    const base = <f64>p;
    const idx = Math.floor((v - base) * inv + 0.5);
    const r = <f32>(base + width * idx);
    const j = <usize>(i - start) << 2;
    if (Math.abs(v - <f64>r) <= b && Math.abs(idx) < 1073741824.0) {
      const qi: u32 = idx >= 0 ? <u32>(2.0 * idx) : <u32>(-2.0 * idx - 1.0);
      store<u32>(q + j, qi);
      sum += qi;
      p = r;
    } else {
      store<u32>(q + j, NO_Q);
      p = <f32>v;
    }
    store<f32>(rec + j, p);
  }
  indexSum = sum;
}

/** The best Rice parameter for the n indices at q (sum: indexSum), searched at k0 − 1, k0, k0 + 1 around log2 of the mean; the lowest wins a tie. */
function riceParameter(q: usize, n: i32, sum: u64): i32 {
  const mean1 = <f64>sum / <f64>n + 1.0;
  let k0 = 0;
  while (k0 < MAX_K && <f64>(1 << (k0 + 1)) <= mean1) k0++;
  const kLo = max(0, k0 - 1), kHi = min(MAX_K, k0 + 1);
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const noQ = i32x4.splat(-1), esc = i32x4.splat(ESCAPE), escBits = i32x4.splat(ESCAPE + 32);
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(q + (<usize>i << 2));
      const isEsc = i32x4.eq(v, noQ);
      const m0 = i32x4.min_u(i32x4.shr_u(v, kLo), esc), m1 = i32x4.min_u(i32x4.shr_u(v, kLo + 1), esc), m2 = i32x4.min_u(i32x4.shr_u(v, kLo + 2), esc);
      a0 = i32x4.add(a0, v128.bitselect(escBits, i32x4.add(m0, i32x4.splat(1 + kLo)), v128.or(isEsc, i32x4.eq(m0, esc))));
      a1 = i32x4.add(a1, v128.bitselect(escBits, i32x4.add(m1, i32x4.splat(2 + kLo)), v128.or(isEsc, i32x4.eq(m1, esc))));
      a2 = i32x4.add(a2, v128.bitselect(escBits, i32x4.add(m2, i32x4.splat(3 + kLo)), v128.or(isEsc, i32x4.eq(m2, esc))));
    }
    t0 = <i64>(i32x4.extract_lane(a0, 0) + i32x4.extract_lane(a0, 1) + i32x4.extract_lane(a0, 2) + i32x4.extract_lane(a0, 3));
    t1 = <i64>(i32x4.extract_lane(a1, 0) + i32x4.extract_lane(a1, 1) + i32x4.extract_lane(a1, 2) + i32x4.extract_lane(a1, 3));
    t2 = <i64>(i32x4.extract_lane(a2, 0) + i32x4.extract_lane(a2, 1) + i32x4.extract_lane(a2, 2) + i32x4.extract_lane(a2, 3));
  }
  for (; i < n; i++) {
    const qi = load<u32>(q + (<usize>i << 2));
    t0 += price(qi, kLo);
    t1 += price(qi, kLo + 1);
    t2 += price(qi, kLo + 2);
  }
  let bestBits = t0, bestK = kLo;
  if (kLo + 1 <= kHi && t1 < bestBits) {
    bestBits = t1;
    bestK = kLo + 1;
  }
  if (kLo + 2 <= kHi && t2 < bestBits) bestK = kLo + 2;
  return bestK;
}

/** Bits of one index at Rice parameter k (an escape: ESCAPE ones and 32 bits). */
// @ts-ignore: decorator
@inline function price(qi: u32, k: i32): i64 {
  const m = qi == NO_Q ? ESCAPE : <i32>min<u32>(qi >> <u32>k, <u32>ESCAPE);
  return m >= ESCAPE ? ESCAPE + 32 : m + 1 + k;
}

// The encoder's bit writer (an instance's globals, like indexSum): pending bits (fewer than 32
// between calls) and the next byte to store.
let wAcc: u64 = 0;
let wBits: i32 = 0;
let wPtr: usize = 0;

/** Appends the low n (<= 32) bits of v, LSB first, storing each completed 32-bit word. */
// @ts-ignore: decorator
@inline function put(v: u32, n: i32): void {
  wAcc |= <u64>v << <u64>wBits;
  wBits += n;
  if (wBits >= 32) {
    store<u32>(wPtr, <u32>wAcc);
    wPtr += 4;
    wAcc >>= 32;
    wBits -= 32;
  }
}

/** The stored bits of a reconstruction (one NaN pattern). */
// @ts-ignore: decorator
@inline function f32Bits(v: f32): u32 {
  return v != v ? 0x7fc00000 : reinterpret<u32>(v);
}

/**
 * Encodes chunks [from, to) of x (n float32 values) within `bound` (float32 bits). Chunk c is
 * written at out + (c − first) * region (src/compress/comet.ts `cometRegionBytes`: its worst-case
 * stream, then SCRATCH bytes of block scratch) and its byte length stored to lens[c − first]
 * (u32); the caller assembles the stream.
 */
export function cometEncode(x: usize, n: i32, boundBits: u32, out: usize, region: i32, lens: usize, first: i32, from: i32, to: i32): void {
  const bound = reinterpret<f32>(boundBits);
  for (let c = from; c < to; c++) {
    const base = out + <usize>(c - first) * <usize>region;
    const scratch = base + <usize>(region - SCRATCH);
    const q = scratch, rec = scratch + <usize>(BLOCK << 2);
    const chunkEnd = min(n, (c + 1) * CHUNK);
    wPtr = base;
    wAcc = 0;
    wBits = 0;
    let prev: f32 = 0;
    for (let start = c * CHUNK; start < chunkEnd; start += BLOCK) {
      const end = min(start + BLOCK, chunkEnd);
      const useZero = zeroPredicts(x, start, end, prev, bound, q, rec);
      if (!useZero) lorenzoBlock(x, start, end, prev, bound, q, rec);
      const k = riceParameter(q, end - start, indexSum);
      put((useZero ? 1 : 0) | (k << 1), 6);
      for (let i = 0; i < end - start; i++) {
        const qi = load<u32>(q + (<usize>i << 2));
        const m = qi == NO_Q ? ESCAPE : <i32>min<u32>(qi >> <u32>k, <u32>ESCAPE);
        if (m >= ESCAPE) {
          put((1 << ESCAPE) - 1, ESCAPE);
          put(f32Bits(load<f32>(rec + (<usize>i << 2))), 32);
        } else {
          put((1 << m) - 1, m + 1); // m ones and the terminating zero
          put(qi & ((<u32>1 << <u32>k) - 1), k); // the k low bits
        }
      }
      prev = load<f32>(rec + (<usize>(end - start - 1) << 2));
    }
    // The last partial word, as whole bytes.
    for (; wBits > 0; wBits -= 8) {
      store<u8>(wPtr, <u8>wAcc);
      wPtr++;
      wAcc >>= 8;
    }
    store<u32>(lens + (<usize>(c - first) << 2), <u32>(wPtr - base));
  }
}

/**
 * Decodes chunks [from, to) of a stream of `size` bytes at src into out (n float32 values), the
 * chunk table checked by the caller. A chunk that reads past its end or holds a Rice parameter
 * above MAX_K stores 1 at status (the values decoded are then meaningless).
 */
export function cometDecode(src: usize, size: i32, n: i32, out: usize, status: usize, from: i32, to: i32): void {
  const chunks = (n + CHUNK - 1) / CHUNK;
  let at = src + <usize>(4 + 4 * chunks);
  for (let c = 0; c < from; c++) at += <usize>load<u32>(src + <usize>(4 + 4 * c));
  const width = 2.0 * <f64>reinterpret<f32>(load<u32>(src));
  for (let c = from; c < to; c++) {
    const length = load<u32>(src + <usize>(4 + 4 * c));
    const end = at + <usize>length;
    let ptr = at;
    let acc: u64 = 0, bits: i32 = 0;
    let used: i64 = 0;
    const chunkEnd = min(n, (c + 1) * CHUNK);
    let prev: f32 = 0;
    let bad = false;
    for (let start = c * CHUNK; start < chunkEnd && !bad; start += BLOCK) {
      const blockEnd = min(start + BLOCK, chunkEnd);
      // Refill to at least 57 bits (zeros past the chunk's end; `used` catches a read beyond it).
      while (bits <= 56) {
        acc |= <u64>(ptr < end ? load<u8>(ptr) : 0) << <u64>bits;
        ptr++;
        bits += 8;
      }
      const zero = (acc & 1) != 0;
      const k = <i32>((acc >> 1) & 31);
      acc >>= 6;
      bits -= 6;
      used += 6;
      if (k > MAX_K) {
        bad = true;
        break;
      }
      for (let i = start; i < blockEnd; i++) {
        while (bits <= 56) {
          acc |= <u64>(ptr < end ? load<u8>(ptr) : 0) << <u64>bits;
          ptr++;
          bits += 8;
        }
        const m = min(ESCAPE, <i32>ctz(~acc));
        if (m >= ESCAPE) {
          acc >>= <u64>ESCAPE;
          bits -= ESCAPE;
          prev = reinterpret<f32>(<u32>acc);
          acc >>= 32;
          bits -= 32;
          used += ESCAPE + 32;
        } else {
          acc >>= <u64>(m + 1);
          bits -= m + 1;
          const low = <u64>(acc & ((<u64>1 << <u64>k) - 1));
          acc >>= <u64>k;
          bits -= k;
          used += m + 1 + k;
          const qi = (<u64>m << <u64>k) + low;
          const idx = (qi & 1) == 0 ? <f64>(qi >> 1) : -<f64>((qi + 1) >> 1);
          prev = <f32>((zero ? 0.0 : <f64>prev) + width * idx);
        }
        store<f32>(out + (<usize>i << 2), prev);
      }
      if (used > <i64>length * 8) bad = true;
    }
    if (bad) {
      store<i32>(status, 1);
      // Leave nothing undefined behind: the rest of the chunk reads as zeros.
      for (let i = c * CHUNK; i < chunkEnd; i++) store<f32>(out + (<usize>i << 2), 0);
    }
    at = end;
  }
}
