// COMET / SZ error-bounded codec of activation compression (src/compress/comet.ts), bit for bit:
// per chunk of CHUNK values (prediction restarting from bin 0), every value quantized on its own
// to the bin index q = floor(x·(1/2eb) + 0.5) in float32 (dual quantization, as cuSZ: no value
// waits for another's reconstruction, so four lanes at a time), per block of BLOCK values the zero
// predictor (q) or the Lorenzo predictor (q − q_prev) on the indices, whichever has the smaller
// capped sum of zig-zag residuals, Golomb-Rice with the block's best k through a branch-free
// 64-bit bit writer; escapes store the float32 bits (NaN as 0x7fc00000) or a 26-bit residual.
// The decoder reads k = 0 blocks (nearly all on ReLU networks' saves) a byte at a time through a
// table of the unary codes each byte ends. Every kernel covers chunks [from, to), so the pool can
// split them.

const BLOCK: i32 = 256;
const CHUNK: i32 = 256 * BLOCK;
const ESCAPE: i32 = 24;
const MAX_K: i32 = 29;
const Q_LIMIT: f32 = 16777216; // |q| < 2^24: exact in float32
const RESIDUAL_BITS: i32 = 26;
const SUM_CAP: u32 = 1 << 22; // residuals capped in the block sums
const VERBATIM: u32 = 0xffffffff; // a residual list entry for a value stored verbatim
const NO_BIN: i32 = i32.MIN_VALUE; // binIndex's answer for a value stored verbatim
/** The block scratch at the end of each chunk's region (src/compress/comet.ts COMET_SCRATCH): both residual lists. */
const SCRATCH: i32 = 2 * BLOCK * 4;

// The last block's capped residual sums and largest residuals (verbatim values left out), and
// whether it stores a value verbatim (an instance's globals: every pool thread has its own instance).
let zeroSum: u32 = 0;
let lorenzoSum: u32 = 0;
let zeroMax: u32 = 0;
let lorenzoMax: u32 = 0;
let anyVerbatim = false;

/** The bin index of v, or NO_BIN where fround(width·q) misses the bound (`below`: the bound, or 2^-149 for bound 0, so that the strict float32 test is exact). */
// @ts-ignore: decorator
@inline function binIndex(v: f32, width: f32, inv: f32, below: f32): i32 {
  const q = Mathf.floor(v * inv + <f32>0.5);
  if (!(Mathf.abs(q) < Q_LIMIT)) return NO_BIN;
  return Mathf.abs(v - width * q) < below ? <i32>q : NO_BIN;
}

// @ts-ignore: decorator
@inline function zigzag(v: i32): u32 {
  return <u32>((v << 1) ^ (v >> 31));
}

/**
 * Residual lists of the n values at x under both predictors (zero at zr, Lorenzo at lr; VERBATIM
 * for a value stored as is), their capped sums and maxima in zeroSum / lorenzoSum, zeroMax /
 * lorenzoMax, anyVerbatim; returns the last bin index (0 after a verbatim value), the next
 * block's Lorenzo start.
 */
function residuals(x: usize, n: i32, chain: i32, width: f32, inv: f32, below: f32, zr: usize, lr: usize): i32 {
  let i = 0;
  let s0: u32 = 0, s1: u32 = 0, x0: u32 = 0, x1: u32 = 0;
  let verbatim = false;
  if (ASC_FEATURE_SIMD) {
    const vInv = f32x4.splat(inv), vWidth = f32x4.splat(width), vBelow = f32x4.splat(below), half = f32x4.splat(0.5), limit = f32x4.splat(Q_LIMIT);
    const cap = i32x4.splat(SUM_CAP);
    let prev = i32x4.splat(chain), a0 = i32x4.splat(0), a1 = i32x4.splat(0), m0 = i32x4.splat(0), m1 = i32x4.splat(0), bad = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      const qf = f32x4.floor(f32x4.add(f32x4.mul(v, vInv), half));
      const ok = v128.and(f32x4.lt(f32x4.abs(qf), limit), f32x4.lt(f32x4.abs(f32x4.sub(v, f32x4.mul(vWidth, qf))), vBelow));
      const q = v128.and(i32x4.trunc_sat_f32x4_s(qf), ok);
      const d = i32x4.sub(q, i32x4.shuffle(prev, q, 3, 4, 5, 6));
      // Verbatim lanes: q = 0, so their residuals below are 0 (d: a Lorenzo residual against 0) until the or.
      const z0 = v128.xor(i32x4.shl(q, 1), i32x4.shr_s(q, 31));
      const z1 = v128.and(v128.xor(i32x4.shl(d, 1), i32x4.shr_s(d, 31)), ok);
      const notOk = v128.not(ok);
      v128.store(zr + (<usize>i << 2), v128.or(z0, notOk));
      v128.store(lr + (<usize>i << 2), v128.or(z1, notOk));
      a0 = i32x4.add(a0, i32x4.min_u(z0, cap));
      a1 = i32x4.add(a1, i32x4.min_u(z1, cap));
      m0 = i32x4.max_u(m0, z0);
      m1 = i32x4.max_u(m1, z1);
      bad = v128.or(bad, notOk);
      prev = q;
    }
    s0 = <u32>(i32x4.extract_lane(a0, 0) + i32x4.extract_lane(a0, 1) + i32x4.extract_lane(a0, 2) + i32x4.extract_lane(a0, 3));
    s1 = <u32>(i32x4.extract_lane(a1, 0) + i32x4.extract_lane(a1, 1) + i32x4.extract_lane(a1, 2) + i32x4.extract_lane(a1, 3));
    x0 = max(max(<u32>i32x4.extract_lane(m0, 0), <u32>i32x4.extract_lane(m0, 1)), max(<u32>i32x4.extract_lane(m0, 2), <u32>i32x4.extract_lane(m0, 3)));
    x1 = max(max(<u32>i32x4.extract_lane(m1, 0), <u32>i32x4.extract_lane(m1, 1)), max(<u32>i32x4.extract_lane(m1, 2), <u32>i32x4.extract_lane(m1, 3)));
    verbatim = v128.any_true(bad);
    chain = i32x4.extract_lane(prev, 3);
  }
  for (; i < n; i++) {
    const q = binIndex(load<f32>(x + (<usize>i << 2)), width, inv, below);
    const j = <usize>i << 2;
    if (q == NO_BIN) {
      store<u32>(zr + j, VERBATIM);
      store<u32>(lr + j, VERBATIM);
      verbatim = true;
      chain = 0;
    } else {
      const z0 = zigzag(q), z1 = zigzag(q - chain);
      store<u32>(zr + j, z0);
      store<u32>(lr + j, z1);
      s0 += min<u32>(z0, SUM_CAP);
      s1 += min<u32>(z1, SUM_CAP);
      x0 = max(x0, z0);
      x1 = max(x1, z1);
      chain = q;
    }
  }
  zeroSum = s0;
  lorenzoSum = s1;
  zeroMax = x0;
  lorenzoMax = x1;
  anyVerbatim = verbatim;
  return chain;
}

// The last block's last bin index (residualsFast's answer: the next block's Lorenzo start).
let lastBin: i32 = 0;

/**
 * residuals for a block of whole vectors whose values all get a bin and residuals below SUM_CAP
 * (nearly every block): without the verbatim lanes' masking and the capping; false (the caller
 * runs residuals) where that does not hold, or without SIMD.
 */
function residualsFast(x: usize, n: i32, chain: i32, width: f32, inv: f32, below: f32, zr: usize, lr: usize): bool {
  if (!ASC_FEATURE_SIMD || (n & 3) != 0) return false;
  const vInv = f32x4.splat(inv), vWidth = f32x4.splat(width), vBelow = f32x4.splat(below), half = f32x4.splat(0.5), limit = f32x4.splat(Q_LIMIT);
  let prev = i32x4.splat(chain), a0 = i32x4.splat(0), a1 = i32x4.splat(0), m0 = i32x4.splat(0), m1 = i32x4.splat(0), good = i32x4.splat(-1);
  for (let i = 0; i < n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const qf = f32x4.floor(f32x4.add(f32x4.mul(v, vInv), half));
    good = v128.and(good, v128.and(f32x4.lt(f32x4.abs(qf), limit), f32x4.lt(f32x4.abs(f32x4.sub(v, f32x4.mul(vWidth, qf))), vBelow)));
    // Lanes that fail the test above make the whole block take the other path, so the conversion of their (out of range, NaN) bins may be anything.
    let q: v128;
    if (ASC_FEATURE_RELAXED_SIMD) q = i32x4.relaxed_trunc_f32x4_s(qf);
    else q = i32x4.trunc_sat_f32x4_s(qf);
    const d = i32x4.sub(q, i32x4.shuffle(prev, q, 3, 4, 5, 6));
    const z0 = v128.xor(i32x4.shl(q, 1), i32x4.shr_s(q, 31));
    const z1 = v128.xor(i32x4.shl(d, 1), i32x4.shr_s(d, 31));
    v128.store(zr + (<usize>i << 2), z0);
    v128.store(lr + (<usize>i << 2), z1);
    a0 = i32x4.add(a0, z0);
    a1 = i32x4.add(a1, z1);
    m0 = i32x4.max_u(m0, z0);
    m1 = i32x4.max_u(m1, z1);
    prev = q;
  }
  const x0 = max(max(<u32>i32x4.extract_lane(m0, 0), <u32>i32x4.extract_lane(m0, 1)), max(<u32>i32x4.extract_lane(m0, 2), <u32>i32x4.extract_lane(m0, 3)));
  const x1 = max(max(<u32>i32x4.extract_lane(m1, 0), <u32>i32x4.extract_lane(m1, 1)), max(<u32>i32x4.extract_lane(m1, 2), <u32>i32x4.extract_lane(m1, 3)));
  // Below SUM_CAP every residual counts in full, and n of them (n <= 256) sum below 2^30.
  if (!i32x4.all_true(good) || max(x0, x1) >= SUM_CAP) return false;
  zeroSum = <u32>(i32x4.extract_lane(a0, 0) + i32x4.extract_lane(a0, 1) + i32x4.extract_lane(a0, 2) + i32x4.extract_lane(a0, 3));
  lorenzoSum = <u32>(i32x4.extract_lane(a1, 0) + i32x4.extract_lane(a1, 1) + i32x4.extract_lane(a1, 2) + i32x4.extract_lane(a1, 3));
  zeroMax = x0;
  lorenzoMax = x1;
  anyVerbatim = false;
  lastBin = i32x4.extract_lane(prev, 3);
  return true;
}

/**
 * The best Rice parameter for the n residuals at q (capped sum `sum`, largest `largest`),
 * searched at k0 − 1, k0, k0 + 1 around log2 of the mean; the lowest wins a tie. Without
 * escapes at any of the three (no verbatim value, largest >> (k0 − 1) < ESCAPE) a block costs
 * n·(1 + k) + Σ q >> k bits.
 */
function riceParameter(q: usize, n: i32, sum: u32, largest: u32): i32 {
  const mean1 = <f64>sum / <f64>n + 1.0;
  let k0 = 0;
  while (k0 < MAX_K && <f64>(1 << (k0 + 1)) <= mean1) k0++;
  const kLo = max(0, k0 - 1), kHi = min(MAX_K, k0 + 1);
  let t0: i64 = 0, t1: i64 = 0, t2: i64 = 0;
  let i = 0;
  if (!anyVerbatim && (largest >> <u32>kLo) < <u32>ESCAPE) {
    if (kLo == 0) {
      // Σ q is the block's sum (every residual is below ESCAPE here, so the cap never applied).
      shiftSums(q, n, 1, 2);
      t0 = <i64>sum;
      t1 = sumA;
      t2 = sumB;
    } else {
      shiftSums(q, n, kLo, kLo + 1);
      t0 = sumA;
      t1 = sumB;
      shiftSums(q, n, kLo + 2, kLo + 2);
      t2 = sumA;
    }
    t0 += <i64>n * <i64>(1 + kLo);
    t1 += <i64>n * <i64>(2 + kLo);
    t2 += <i64>n * <i64>(3 + kLo);
  } else {
    if (ASC_FEATURE_SIMD) {
      const verbatim = i32x4.splat(-1), esc = i32x4.splat(ESCAPE), escBits = i32x4.splat(ESCAPE + 1 + RESIDUAL_BITS), verbatimBits = i32x4.splat(ESCAPE + 33);
      let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const v = v128.load(q + (<usize>i << 2));
        const isVerbatim = i32x4.eq(v, verbatim);
        const m0 = i32x4.min_u(i32x4.shr_u(v, kLo), esc), m1 = i32x4.min_u(i32x4.shr_u(v, kLo + 1), esc), m2 = i32x4.min_u(i32x4.shr_u(v, kLo + 2), esc);
        a0 = i32x4.add(a0, v128.bitselect(verbatimBits, v128.bitselect(escBits, i32x4.add(m0, i32x4.splat(1 + kLo)), i32x4.eq(m0, esc)), isVerbatim));
        a1 = i32x4.add(a1, v128.bitselect(verbatimBits, v128.bitselect(escBits, i32x4.add(m1, i32x4.splat(2 + kLo)), i32x4.eq(m1, esc)), isVerbatim));
        a2 = i32x4.add(a2, v128.bitselect(verbatimBits, v128.bitselect(escBits, i32x4.add(m2, i32x4.splat(3 + kLo)), i32x4.eq(m2, esc)), isVerbatim));
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
  }
  let bestBits = t0, bestK = kLo;
  if (kLo + 1 <= kHi && t1 < bestBits) {
    bestBits = t1;
    bestK = kLo + 1;
  }
  if (kLo + 2 <= kHi && t2 < bestBits) bestK = kLo + 2;
  return bestK;
}

// shiftSums' answers.
let sumA: i64 = 0;
let sumB: i64 = 0;

/** Σ q >> a and Σ q >> b over the n residuals at q (below ESCAPE << a each) into sumA and sumB. */
function shiftSums(q: usize, n: i32, a: i32, b: i32): void {
  let i = 0;
  let ta: i64 = 0, tb: i64 = 0;
  if (ASC_FEATURE_SIMD) {
    let va = i32x4.splat(0), vb = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(q + (<usize>i << 2));
      va = i32x4.add(va, i32x4.shr_u(v, a));
      vb = i32x4.add(vb, i32x4.shr_u(v, b));
    }
    ta = <i64>(i32x4.extract_lane(va, 0) + i32x4.extract_lane(va, 1) + i32x4.extract_lane(va, 2) + i32x4.extract_lane(va, 3));
    tb = <i64>(i32x4.extract_lane(vb, 0) + i32x4.extract_lane(vb, 1) + i32x4.extract_lane(vb, 2) + i32x4.extract_lane(vb, 3));
  }
  for (; i < n; i++) {
    const qi = load<u32>(q + (<usize>i << 2));
    ta += <i64>(qi >> <u32>a);
    tb += <i64>(qi >> <u32>b);
  }
  sumA = ta;
  sumB = tb;
}

/** Bits of one residual at Rice parameter k (escapes: ESCAPE ones, a type bit and 32 or 26 bits). */
// @ts-ignore: decorator
@inline function price(qi: u32, k: i32): i64 {
  if (qi == VERBATIM) return ESCAPE + 33;
  const m = <i32>min<u32>(qi >> <u32>k, <u32>ESCAPE);
  return m >= ESCAPE ? ESCAPE + 1 + RESIDUAL_BITS : m + 1 + k;
}

// The encoder's bit writer (an instance's globals, like zeroSum): pending bits (fewer than 8
// between calls, already stored at wPtr) and the byte they belong to.
let wAcc: u64 = 0;
let wBits: u64 = 0;
let wPtr: usize = 0;

/**
 * Appends the low n (<= 56) bits of v, LSB first: one unaligned 64-bit store, no branch (the
 * region keeps 8 bytes of slack). With at most 7 bits pending the total stays below 64, so that
 * the shift by its whole bytes is one (a shift by 64 would be one by 0).
 */
// @ts-ignore: decorator
@inline function put(v: u64, n: u64): void {
  wAcc |= v << wBits;
  wBits += n;
  store<u64>(wPtr, wAcc);
  wPtr += <usize>(wBits >> 3);
  wAcc >>= wBits & 56;
  wBits &= 7;
}

/** Writes one residual at Rice parameter k (mask: its k low bits), or an escape (the value at x). */
// @ts-ignore: decorator
@inline function code(qi: u32, k: i32, mask: u32, x: usize): void {
  const m = qi >> <u32>k;
  if (qi != VERBATIM && m < <u32>ESCAPE) {
    // m ones, the terminating zero, the k low bits.
    put(((<u64>(qi & mask)) << (<u64>m + 1)) | ((<u64>1 << <u64>m) - 1), <u64>m + 1 + <u64>k);
  } else if (qi == VERBATIM) {
    put((1 << ESCAPE) - 1, ESCAPE + 1); // ESCAPE ones, type 0
    put(f32Bits(load<f32>(x)), 32);
  } else {
    put((2 << ESCAPE) - 1, ESCAPE + 1); // ESCAPE ones, type 1
    put(qi, RESIDUAL_BITS);
  }
}

/** The stored bits of a value (one NaN pattern). */
// @ts-ignore: decorator
@inline function f32Bits(v: f32): u32 {
  return v != v ? 0x7fc00000 : reinterpret<u32>(v);
}

/**
 * Encodes chunks [from, to) of x (n float32 values) within `bound` (float32 bits). Chunk c is
 * written at out + (c − first) * region (src/compress/comet.ts `cometRegionBytes`: its worst-case
 * stream, 8 bytes of slack, then SCRATCH bytes of block scratch) and its byte length stored to
 * lens[c − first] (u32); the caller assembles the stream.
 */
export function cometEncode(x: usize, n: i32, boundBits: u32, out: usize, region: i32, lens: usize, first: i32, from: i32, to: i32): void {
  const bound = reinterpret<f32>(boundBits);
  const width = <f32>2.0 * bound, inv = bound > 0 ? <f32>1.0 / width : <f32>0.0;
  const below = bound > 0 ? bound : reinterpret<f32>(1); // |v − x̂| < 2^-149: v = x̂
  for (let c = from; c < to; c++) {
    const base = out + <usize>(c - first) * <usize>region;
    const zr = base + <usize>(region - SCRATCH), lr = zr + <usize>(BLOCK << 2);
    const chunkEnd = min(n, (c + 1) * CHUNK);
    wPtr = base;
    wAcc = 0;
    wBits = 0;
    let chain: i32 = 0;
    for (let start = c * CHUNK; start < chunkEnd; start += BLOCK) {
      const count = min(BLOCK, chunkEnd - start);
      const xs = x + (<usize>start << 2);
      chain = residualsFast(xs, count, chain, width, inv, below, zr, lr) ? lastBin : residuals(xs, count, chain, width, inv, below, zr, lr);
      const useZero = zeroSum <= lorenzoSum;
      const q = useZero ? zr : lr;
      const k = riceParameter(q, count, useZero ? zeroSum : lorenzoSum, useZero ? zeroMax : lorenzoMax);
      put(<u64>((useZero ? 1 : 0) | (k << 1)), 6);
      const kk = <u64>k, mask = (<u32>1 << <u32>k) - 1;
      // Groups of 4 codes in one put when none escapes and they fit in 56 bits (a k = 0 code
      // takes 2.3 bits on average on ResNet-20's saves); otherwise code by code.
      const limit = min<u64>(<u64>ESCAPE << kk, 0xffffffff);
      let i = 0;
      if (k == 0 && !anyVerbatim && (useZero ? zeroMax : lorenzoMax) < <u32>ESCAPE) {
        // k = 0 without escapes: eight codes per put where they fit; ones everywhere but at their terminators.
        for (; i + 8 <= count; i += 8) {
          const at = q + (<usize>i << 2);
          const q0 = load<u32>(at), q1 = load<u32>(at, 4), q2 = load<u32>(at, 8), q3 = load<u32>(at, 12);
          const q4 = load<u32>(at, 16), q5 = load<u32>(at, 20), q6 = load<u32>(at, 24), q7 = load<u32>(at, 28);
          const t0 = <u64>q0, t1 = t0 + 1 + <u64>q1, t2 = t1 + 1 + <u64>q2, t3 = t2 + 1 + <u64>q3;
          const t4 = t3 + 1 + <u64>q4, t5 = t4 + 1 + <u64>q5, t6 = t5 + 1 + <u64>q6, t7 = t6 + 1 + <u64>q7;
          if (t7 < 56) {
            const ends = (<u64>1 << t0) | (<u64>1 << t1) | (<u64>1 << t2) | (<u64>1 << t3) | (<u64>1 << t4) | (<u64>1 << t5) | (<u64>1 << t6) | (<u64>1 << t7);
            put(((<u64>2 << t7) - 1) ^ ends, t7 + 1);
          } else {
            for (let j = 0; j < 8; j++) code(load<u32>(at + (<usize>j << 2)), 0, 0, xs + (<usize>(i + j) << 2));
          }
        }
      }
      for (; i + 4 <= count; i += 4) {
        const at = q + (<usize>i << 2);
        const q0 = load<u32>(at), q1 = load<u32>(at, 4), q2 = load<u32>(at, 8), q3 = load<u32>(at, 12);
        const m0 = <u64>(q0 >> <u32>k), m1 = <u64>(q1 >> <u32>k), m2 = <u64>(q2 >> <u32>k), m3 = <u64>(q3 >> <u32>k);
        const l0 = m0 + 1 + kk, l1 = m1 + 1 + kk, l2 = m2 + 1 + kk, l3 = m3 + 1 + kk;
        if (<u64>max(max(q0, q1), max(q2, q3)) < limit && l0 + l1 + l2 + l3 <= 56) {
          const c0 = (<u64>(q0 & mask) << (m0 + 1)) | ((<u64>1 << m0) - 1);
          const c1 = (<u64>(q1 & mask) << (m1 + 1)) | ((<u64>1 << m1) - 1);
          const c2 = (<u64>(q2 & mask) << (m2 + 1)) | ((<u64>1 << m2) - 1);
          const c3 = (<u64>(q3 & mask) << (m3 + 1)) | ((<u64>1 << m3) - 1);
          put(c0 | (c1 << l0) | (c2 << (l0 + l1)) | (c3 << (l0 + l1 + l2)), l0 + l1 + l2 + l3);
        } else {
          for (let j = 0; j < 4; j++) code(load<u32>(at + (<usize>j << 2)), k, mask, xs + (<usize>(i + j) << 2));
        }
      }
      for (; i < count; i++) code(load<u32>(q + (<usize>i << 2)), k, mask, xs + (<usize>i << 2));
    }
    // The pending bits are already stored in the last partial byte.
    store<u32>(lens + (<usize>(c - first) << 2), <u32>(wPtr - base) + (wBits > 0 ? 1 : 0));
  }
}

const VALID: u64 = (<u64>1 << 57) - 1; // the bits `peek` guarantees
const ALL: u64 = ~(<u64>0);

/** 64 stream bits from bit `pos` of the `length`-byte chunk at src, zeros past its end: at least 57 valid. */
// @ts-ignore: decorator
@inline function peek(src: usize, length: u64, pos: u64): u64 {
  const at = pos >> 3;
  if (at + 8 <= length) return load<u64>(src + <usize>at) >> (pos & 7);
  let v: u64 = 0;
  for (let b: u64 = 0; b < 8 && at + b < length; b++) v |= <u64>load<u8>(src + <usize>(at + b)) << (b << 3);
  return v >> (pos & 7);
}

// The decoder's position in the current chunk (bits) and its last bin index.
let rPos: u64 = 0;
let rChain: i32 = 0;

/** Bytes of the unary table at the start of cometDecode's scratch (src/compress/comet.ts COMET_DECODE_SCRATCH). */
const TABLE_BYTES: i32 = 256 * 16;
/** Ones carried over a byte boundary from which the table reader hands its block to decodeBlock: below it, a code ending in the next byte (at most 7 more ones) stays below ESCAPE. */
const LONG_RUN: u32 = <u32>ESCAPE - 7;

/**
 * The unary table at t, per byte value b of the stream (LSB first), 16 bytes: the runs of ones
 * before each of its zeros (lanes 0..7, the first without the ones carried in from earlier
 * bytes), then the number of zeros (lane 8) and the ones after the last zero (lane 9).
 */
function buildUnaryTable(t: usize): void {
  for (let b = 0; b < 256; b++) {
    const e = t + (<usize>b << 4);
    let run: u32 = 0, c: usize = 0;
    for (let bit = 0; bit < 8; bit++) {
      if ((b >> bit) & 1) run++;
      else {
        store<u8>(e + c, <u8>run);
        c++;
        run = 0;
      }
    }
    for (let l = c; l < 8; l++) store<u8>(e + l, 0);
    store<u8>(e, <u8>c, 8);
    store<u8>(e, <u8>run, 9);
  }
}

/**
 * Reads the n codes of a k = 0 block from rPos as u8 residuals at res (n + 16 bytes) a stream
 * byte at a time through the unary table: every zero ends a code, whose residual is the run of
 * ones before it. False where a run reaches LONG_RUN ones before the block's last code (a
 * possible escape; rPos is then left as it was).
 */
function readUnary(src: usize, length: u64, table: usize, res: usize, n: i32): bool {
  let pos = rPos;
  let i = 0;
  let carry: u32 = 0;
  while (true) {
    const v = peek(src, length, pos);
    for (let j: u64 = 0; j < 56; j += 8) {
      const b = <u32>(v >> j) & 255;
      const e = table + (<usize>b << 4);
      if (ASC_FEATURE_SIMD) {
        v128.store(res + <usize>i, i8x16.add(v128.load(e), i8x16.replace_lane(i8x16.splat(0), 0, <i8>carry)));
      } else {
        const c = <i32>load<u8>(e, 8);
        for (let l = 0; l < c; l++) store<u8>(res + <usize>(i + l), load<u8>(e + <usize>l) + <u8>(l == 0 ? carry : 0));
      }
      const c = <i32>load<u8>(e, 8), before = i;
      i += c;
      if (i >= n) {
        // The block's last code ends at the (n − before)-th zero of this byte.
        let z = ~b & 255;
        for (let r = n - before; r > 1; r--) z &= z - 1;
        rPos = pos + j + <u64>ctz(z) + 1;
        return true;
      }
      carry = c != 0 ? <u32>load<u8>(e, 9) : carry + 8;
      if (carry >= LONG_RUN) return false;
    }
    pos += 56;
  }
}

/**
 * Reads the n residuals of a block without escapes (Rice parameter k >= 1) from rPos into dst as
 * u32, every code of a 57-bit window from its terminating zeros; false at the first escape.
 */
function readResiduals(src: usize, length: u64, k: i32, dst: usize, n: i32): bool {
  const kk = <u64>k, mask = (<u64>1 << kk) - 1;
  let pos = rPos;
  let i = 0;
  while (i < n) {
    const v = peek(src, length, pos);
    let t = ~v & VALID;
    let next: u64 = 0; // where the next code starts
    while (i < n) {
      t &= ALL << next;
      if (t == 0) break;
      const p = ctz(t);
      const m = p - next;
      if (m >= <u64>ESCAPE || p + 1 + kk > 57) break;
      next = p + 1 + kk;
      store<u32>(dst + (<usize>i << 2), <u32>(((v >> (p + 1)) & mask) | (m << kk)));
      i++;
    }
    if (next == 0) return false; // an escape at the window's start
    pos += next;
  }
  rPos = pos;
  return true;
}

/**
 * Four zig-zag-decoded residuals d (i32x4) to float32 values at dst: bin indices (under Lorenzo
 * the running sum from the carry's lanes) times width; returns the new carry (the last index in
 * every lane).
 */
// @ts-ignore: decorator
@inline function emit4(d: v128, carry: v128, zero: bool, w: v128, dst: usize): v128 {
  const none = i32x4.splat(0);
  if (!zero) {
    d = i32x4.add(d, i32x4.shuffle(none, d, 3, 4, 5, 6));
    d = i32x4.add(d, i32x4.shuffle(none, d, 2, 3, 4, 5));
    d = i32x4.add(d, carry);
  }
  v128.store(dst, f32x4.mul(w, f32x4.convert_i32x4_s(d)));
  return i32x4.shuffle(d, d, 3, 3, 3, 3);
}

/**
 * The n residuals of a block to float32 values at dst: bin indices (from rChain under Lorenzo)
 * times width. The residuals are u32 at dst itself, or (`bytes`: a k = 0 block read by readUnary)
 * u8 at src.
 */
function reconstruct(src: usize, dst: usize, n: i32, zero: bool, width: f32, bytes: bool): void {
  let chain = rChain;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const w = f32x4.splat(width);
    let carry = i32x4.splat(chain);
    if (bytes) {
      const one = i8x16.splat(1);
      for (; i + 16 <= n; i += 16) {
        const m = v128.load(src + <usize>i);
        const d = v128.xor(i8x16.shr_u(m, 1), i8x16.neg(v128.and(m, one))); // |d| <= 12
        const lo = i16x8.extend_low_i8x16_s(d), hi = i16x8.extend_high_i8x16_s(d);
        const at = dst + (<usize>i << 2);
        carry = emit4(i32x4.extend_low_i16x8_s(lo), carry, zero, w, at);
        carry = emit4(i32x4.extend_high_i16x8_s(lo), carry, zero, w, at + 16);
        carry = emit4(i32x4.extend_low_i16x8_s(hi), carry, zero, w, at + 32);
        carry = emit4(i32x4.extend_high_i16x8_s(hi), carry, zero, w, at + 48);
      }
    } else {
      const one = i32x4.splat(1);
      for (; i + 4 <= n; i += 4) {
        const z = v128.load(dst + (<usize>i << 2));
        carry = emit4(v128.xor(i32x4.shr_u(z, 1), i32x4.neg(v128.and(z, one))), carry, zero, w, dst + (<usize>i << 2));
      }
    }
    if (i > 0) chain = i32x4.extract_lane(carry, 0);
  }
  for (; i < n; i++) {
    const z = bytes ? <u32>load<u8>(src + <usize>i) : load<u32>(dst + (<usize>i << 2));
    const d = <i32>(z >> 1) ^ -<i32>(z & 1);
    chain = zero ? d : chain + d;
    store<f32>(dst + (<usize>i << 2), width * <f32>chain);
  }
  rChain = chain;
}

/** Decodes a block with escapes value by value from rPos and rChain (Rice parameter k). */
function decodeBlock(src: usize, length: u64, k: i32, zero: bool, width: f32, dst: usize, n: i32): void {
  const kk = <u64>k, mask = (<u64>1 << kk) - 1;
  let pos = rPos, chain = rChain;
  for (let i = 0; i < n; i++) {
    const v = peek(src, length, pos);
    const m = ctz(~v);
    let res: u32;
    if (m < <u64>ESCAPE) {
      res = <u32>(((v >> (m + 1)) & mask) | (m << kk));
      pos += m + 1 + kk;
    } else if (((v >> <u64>ESCAPE) & 1) == 0) {
      // ESCAPE ones, type 0: the float32 bits.
      store<u32>(dst + (<usize>i << 2), <u32>(v >> <u64>(ESCAPE + 1)));
      pos += ESCAPE + 33;
      chain = 0;
      continue;
    } else {
      // ESCAPE ones, type 1: a 26-bit residual.
      res = <u32>((v >> <u64>(ESCAPE + 1)) & ((1 << RESIDUAL_BITS) - 1));
      pos += ESCAPE + 1 + RESIDUAL_BITS;
    }
    const d = <i32>(res >> 1) ^ -<i32>(res & 1);
    chain = zero ? d : chain + d;
    store<f32>(dst + (<usize>i << 2), width * <f32>chain);
  }
  rPos = pos;
  rChain = chain;
}

/**
 * Decodes chunks [from, to) of a stream of `size` bytes at src into out (n float32 values), the
 * chunk table checked by the caller, with COMET_DECODE_SCRATCH bytes of scratch: per block the
 * residuals first (k = 0: a byte at a time through the unary table; k >= 1: from the codes'
 * terminating zeros), then one SIMD pass to values; blocks with escapes value by value. A chunk
 * that reads past its end or holds a Rice parameter above MAX_K stores 1 at status (the values
 * decoded are then meaningless).
 */
export function cometDecode(src: usize, size: i32, n: i32, out: usize, status: usize, scratch: usize, from: i32, to: i32): void {
  const chunks = (n + CHUNK - 1) / CHUNK;
  let at = src + <usize>(4 + 4 * chunks);
  for (let c = 0; c < from; c++) at += <usize>load<u32>(src + <usize>(4 + 4 * c));
  const width = <f32>2.0 * reinterpret<f32>(load<u32>(src));
  const table = scratch, res = scratch + <usize>TABLE_BYTES;
  buildUnaryTable(table);
  for (let c = from; c < to; c++) {
    const length = <u64>load<u32>(src + <usize>(4 + 4 * c));
    const chunkEnd = min(n, (c + 1) * CHUNK);
    rPos = 0;
    rChain = 0;
    let bad = false;
    for (let start = c * CHUNK; start < chunkEnd; start += BLOCK) {
      const count = min(BLOCK, chunkEnd - start);
      const head = peek(at, length, rPos);
      const zero = (head & 1) != 0;
      const k = <i32>((head >> 1) & 31);
      rPos += 6;
      if (k > MAX_K) {
        bad = true;
        break;
      }
      const dst = out + (<usize>start << 2), pos = rPos;
      let fast: bool;
      if (k == 0) {
        fast = readUnary(at, length, table, res, count);
        if (fast) reconstruct(res, dst, count, zero, width, true);
      } else {
        fast = readResiduals(at, length, k, dst, count);
        if (fast) reconstruct(dst, dst, count, zero, width, false);
      }
      if (!fast) {
        rPos = pos;
        decodeBlock(at, length, k, zero, width, dst, count);
      }
      if (rPos > length * 8) {
        bad = true;
        break;
      }
    }
    if (bad) {
      store<i32>(status, 1);
      // Leave nothing undefined behind: the rest of the chunk reads as zeros.
      for (let i = c * CHUNK; i < chunkEnd; i++) store<f32>(out + (<usize>i << 2), 0);
    }
    at += <usize>length;
  }
}
