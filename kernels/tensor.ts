// Generic tensor kernels on float32 (mirrors src/backends/reference/tensor.ts, the oracle):
// elementwise maps, reductions, softmax and cross-entropy, row gathers, strided copies, average
// pooling and the per-channel bias add. Wrapped by src/backends/wasm/tensor.ts (argument checks,
// op codes, thread split). Float arguments arrive as f32 bit patterns in i32 where the thread pool
// may run the kernel (it passes i32 words only).

// ---- vector math ----------------------------------------------------------------------------

import { expf, expv } from './vmath';

/** tanh per lane: odd Taylor polynomial below |x| = 0.3, else sign(x) (1 - e) / (1 + e) with e = e^(-2|x|). */
// @ts-ignore: decorator
@inline function tanhv(x: v128): v128 {
  const ax = f32x4.abs(x);
  const e = expv(f32x4.mul(ax, f32x4.splat(-2)));
  const big = f32x4.div(f32x4.sub(f32x4.splat(1), e), f32x4.add(f32x4.splat(1), e));
  const x2 = f32x4.mul(x, x);
  let p = f32x4.splat(<f32>(62.0 / 2835.0));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(<f32>(-17.0 / 315.0)));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(<f32>(2.0 / 15.0)));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(<f32>(-1.0 / 3.0)));
  const small = f32x4.add(x, f32x4.mul(f32x4.mul(p, x2), x));
  const signed = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, signed, f32x4.lt(ax, f32x4.splat(0.3)));
}

/** tanh: tanhv's formula on one value. */
function tanhf(x: f32): f32 {
  const ax = abs<f32>(x);
  if (ax < 0.3) {
    const x2 = x * x;
    let p: f32 = <f32>(62.0 / 2835.0);
    p = p * x2 + <f32>(-17.0 / 315.0);
    p = p * x2 + <f32>(2.0 / 15.0);
    p = p * x2 + <f32>(-1.0 / 3.0);
    return x + p * x2 * x;
  }
  const e = expf(ax * -2);
  return copysign<f32>((1 - e) / (1 + e), x);
}

/**
 * Natural log in f64 without lookup tables (the std library's log reads tables from static data,
 * which these kernels must not have): x = m 2^e with m in [sqrt(1/2), sqrt(2)), then
 * log m = 2 atanh(z), z = (m - 1) / (m + 1), |z| < 0.172, by its series to z^23.
 */
function log64(x: f64): f64 {
  if (!(x > 0) || x == Infinity) return x == 0 ? -Infinity : x == Infinity ? x : NaN;
  let bits = reinterpret<u64>(x);
  let e = <i32>((bits >> 52) & 0x7ff);
  if (e == 0) {
    // subnormal: scale into the normal range first
    bits = reinterpret<u64>(x * 18014398509481984.0); // 2^54
    e = <i32>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  const z = (m - 1) / (m + 1), z2 = z * z;
  let t: f64 = 1.0 / 23;
  for (let k = 21; k >= 1; k -= 2) t = t * z2 + 1.0 / <f64>k;
  return 2 * z * t + <f64>e * 0.6931471805599453;
}

const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_A: f32 = 0.044715;

// ---- unary ----------------------------------------------------------------------------------

// Op codes: the order of UNARY_CODES in src/backends/wasm/tensor.ts.
// 8 (gelu_grad) is the last case of each map; 2 (log), 6 (softplus), 11 (pow_scalar) never get here.
const NEG = 0, EXP = 1, SQRT = 3, TANH = 4, SIGMOID = 5, GELU = 7, MUL_S = 9, ADD_S = 10;

// @ts-ignore: decorator
@inline function unaryLanes(op: i32, x: v128, s: v128): v128 {
  if (op == NEG) return f32x4.neg(x);
  if (op == EXP) return expv(x);
  if (op == SQRT) return f32x4.sqrt(x);
  if (op == TANH) return tanhv(x);
  if (op == SIGMOID) return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
  if (op == MUL_S) return f32x4.mul(x, s);
  if (op == ADD_S) return f32x4.add(x, s);
  // GELU through the logistic function: 0.5 (1 + tanh u) = gate = 1 / (1 + e^(-2u)), u = c (x + a x^3):
  // one exp and one division instead of tanh's two branches, and no cancellation in 1 + tanh u
  // for large negative x.
  const one = f32x4.splat(1);
  const gate = f32x4.div(one, f32x4.add(one, expv(f32x4.mul(f32x4.splat(-2 * GELU_C), f32x4.add(x, f32x4.mul(f32x4.splat(GELU_A), f32x4.mul(f32x4.mul(x, x), x)))))));
  if (op == GELU) return f32x4.mul(x, gate);
  // GELU_GRAD: gate + 2 x gate (1 - gate) c (1 + 3 a x^2); x^2 of the last factor clamped (|x| > 10
  // saturates the gate, so gate (1 - gate) = 0; an infinite x^2 would make it NaN).
  const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-10)), f32x4.splat(10));
  const slope = f32x4.mul(f32x4.splat(GELU_C), f32x4.add(one, f32x4.mul(f32x4.splat(3 * GELU_A), f32x4.mul(xc, xc))));
  return f32x4.add(gate, f32x4.mul(f32x4.mul(f32x4.mul(f32x4.add(x, x), gate), f32x4.sub(one, gate)), slope));
}

function unaryScalar(op: i32, x: f32, s: f32): f32 {
  if (op == NEG) return -x;
  if (op == EXP) return expf(x);
  if (op == SQRT) return sqrt<f32>(x);
  if (op == TANH) return tanhf(x);
  if (op == SIGMOID) return 1 / (1 + expf(-x));
  if (op == MUL_S) return x * s;
  if (op == ADD_S) return x + s;
  const gate: f32 = <f32>1 / (<f32>1 + expf(<f32>(-2 * GELU_C) * (x + GELU_A * (x * x * x))));
  if (op == GELU) return x * gate;
  const xc = min<f32>(max<f32>(x, -10), 10);
  return gate + (x + x) * gate * (<f32>1 - gate) * (GELU_C * (<f32>1 + <f32>(3 * GELU_A) * (xc * xc)));
}

/**
 * out[i] = f_op(x[i], s) over n elements (out may be x). log, softplus and pow_scalar are not here
 * (the wrapper runs the reference for them): they would need the std library's table-driven math.
 */
export function unary(op: i32, x: usize, out: usize, n: i32, sBits: i32): void {
  const s = reinterpret<f32>(sBits);
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(s);
    for (; i + 4 <= n; i += 4) {
      const k = <usize>i << 2;
      v128.store(out + k, unaryLanes(op, v128.load(x + k), sv));
    }
  }
  for (; i < n; i++) {
    const k = <usize>i << 2;
    store<f32>(out + k, unaryScalar(op, load<f32>(x + k), s));
  }
}

// ---- reductions -----------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function lanesSum(a: v128): f64 {
  return f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
}

/** Sum of n float32 values at p, accumulated in f64 lanes. */
function rowSum64(p: usize, n: i32): f64 {
  let i = 0;
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(p + (<usize>i << 2));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
    }
    s = lanesSum(a0) + lanesSum(a1);
  }
  for (; i < n; i++) s += <f64>load<f32>(p + (<usize>i << 2));
  return s;
}

/**
 * y[o, i] = sum (op 0) or max (op 1) of x[o, r, i] over r, for outer rows [o0, o1). For max, mask
 * (u8, x's layout, when hasMask) gets 1 at the first maximum and 0 elsewhere.
 */
export function reduce(op: i32, x: usize, y: usize, mask: usize, o0: i32, o1: i32, reduced: i32, inner: i32, hasMask: i32): void {
  const rowStride = <usize>inner << 2;
  for (let o = o0; o < o1; o++) {
    const xo = x + ((<usize>o * <usize>reduced * <usize>inner) << 2), yo = y + ((<usize>o * <usize>inner) << 2);
    if (op == 0 && inner == 1) {
      store<f32>(yo, <f32>rowSum64(xo, reduced));
      continue;
    }
    if (op == 0) {
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        for (; i + 4 <= inner; i += 4) {
          let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
          let p = xo + (<usize>i << 2);
          for (let r = 0; r < reduced; r++, p += rowStride) {
            const v = v128.load(p);
            a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
            a1 = f64x2.add(a1, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
          }
          v128.store(yo + (<usize>i << 2), f32x4.replace_lane(f32x4.replace_lane(
            f32x4.demote_f64x2_zero(a0), 2, <f32>f64x2.extract_lane(a1, 0)), 3, <f32>f64x2.extract_lane(a1, 1)));
        }
      }
      for (; i < inner; i++) {
        let s: f64 = 0;
        let p = xo + (<usize>i << 2);
        for (let r = 0; r < reduced; r++, p += rowStride) s += <f64>load<f32>(p);
        store<f32>(yo + (<usize>i << 2), <f32>s);
      }
      continue;
    }
    const mo = mask + <usize>o * <usize>reduced * <usize>inner;
    if (hasMask) memory.fill(mo, 0, <usize>reduced * <usize>inner);
    for (let i = 0; i < inner; i++) {
      let best: f32 = -Infinity;
      let at = -1;
      let p = xo + (<usize>i << 2);
      for (let r = 0; r < reduced; r++, p += rowStride) {
        const v = load<f32>(p);
        if (at < 0 || v > best) {
          best = v;
          at = r;
        }
      }
      store<f32>(yo + (<usize>i << 2), best);
      if (hasMask && at >= 0) store<u8>(mo + <usize>at * <usize>inner + <usize>i, 1);
    }
  }
}

// ---- softmax and cross-entropy --------------------------------------------------------------

/** log(sum(exp(row))) of n values at p (max subtracted), in f64 from f32 lanes. */
function logSumExp(p: usize, n: i32): f64 {
  let m: f32 = -Infinity;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    let mv = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, v128.load(p + (<usize>i << 2)));
    m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  }
  for (; i < n; i++) m = max(m, load<f32>(p + (<usize>i << 2)));
  let s: f64 = 0;
  i = 0;
  if (ASC_FEATURE_SIMD) {
    const mv = f32x4.splat(m);
    let acc = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, expv(f32x4.sub(v128.load(p + (<usize>i << 2)), mv)));
    s = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  }
  for (; i < n; i++) s += <f64>expf(load<f32>(p + (<usize>i << 2)) - m);
  return <f64>m + log64(s);
}

/** y = exp(x - l) (or x - l with log) over n values. */
function shiftRow(x: usize, y: usize, n: i32, l: f32, log: bool): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const lv = f32x4.splat(l);
    for (; i + 4 <= n; i += 4) {
      const k = <usize>i << 2;
      const d = f32x4.sub(v128.load(x + k), lv);
      v128.store(y + k, log ? d : expv(d));
    }
  }
  for (; i < n; i++) {
    const k = <usize>i << 2;
    const d = load<f32>(x + k) - l;
    store<f32>(y + k, log ? d : expf(d));
  }
}

/** Softmax (log-softmax when log != 0) of rows [r0, r1) of n values. */
export function softmax(x: usize, y: usize, r0: i32, r1: i32, n: i32, log: i32): void {
  for (let r = r0; r < r1; r++) {
    const off = (<usize>r * <usize>n) << 2;
    shiftRow(x + off, y + off, n, <f32>logSumExp(x + off, n), log != 0);
  }
}

/** probs = softmax rows of logits [rows, n]; returns the sum over rows of logsumexp(row) - row[label]. */
export function crossEntropy(logits: usize, labels: usize, probs: usize, rows: i32, n: i32): f64 {
  let total: f64 = 0;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * <usize>n) << 2;
    const l = logSumExp(logits + off, n);
    total += l - <f64>load<f32>(logits + off + (<usize>load<i32>(labels + (<usize>r << 2)) << 2));
    shiftRow(logits + off, probs + off, n, <f32>l, false);
  }
  return total;
}

/** out = (probs - onehot(labels)) * scale over [rows, n]. */
export function crossEntropyGrad(probs: usize, labels: usize, out: usize, rows: i32, n: i32, scale: f32): void {
  const total = rows * n;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(scale);
    for (; i + 4 <= total; i += 4) v128.store(out + (<usize>i << 2), f32x4.mul(v128.load(probs + (<usize>i << 2)), sv));
  }
  for (; i < total; i++) store<f32>(out + (<usize>i << 2), load<f32>(probs + (<usize>i << 2)) * scale);
  for (let r = 0; r < rows; r++) {
    const p = out + ((<usize>r * <usize>n + <usize>load<i32>(labels + (<usize>r << 2))) << 2);
    store<f32>(p, load<f32>(p) - scale);
  }
}

// ---- rows, copies, pooling ------------------------------------------------------------------

/** The index of the first id outside [0, rows), or -1. */
function badId(ids: usize, count: i32, rows: i32): i32 {
  for (let i = 0; i < count; i++) {
    const id = load<i32>(ids + (<usize>i << 2));
    if (id < 0 || id >= rows) return i;
  }
  return -1;
}

/** out[i, :] = table[ids[i], :] (D values per row); returns the first bad id's index (nothing written) or -1. */
export function gatherRows(table: usize, ids: usize, out: usize, count: i32, D: i32, rows: i32): i32 {
  const bad = badId(ids, count, rows);
  if (bad >= 0) return bad;
  const bytes = <usize>D << 2;
  for (let i = 0; i < count; i++) memory.copy(out + <usize>i * bytes, table + <usize>load<i32>(ids + (<usize>i << 2)) * bytes, bytes);
  return -1;
}

/** out[ids[i], :] += g[i, :]; returns the first bad id's index (nothing written) or -1. */
export function scatterAddRows(g: usize, ids: usize, out: usize, count: i32, D: i32, rows: i32): i32 {
  const bad = badId(ids, count, rows);
  if (bad >= 0) return bad;
  const bytes = <usize>D << 2;
  for (let i = 0; i < count; i++) addInto(out + <usize>load<i32>(ids + (<usize>i << 2)) * bytes, g + <usize>i * bytes, D, 1);
  return -1;
}

/** dst[k] += src[k] * scale over n values. */
function addInto(dst: usize, src: usize, n: i32, scale: f32): void {
  let k = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(scale);
    for (; k + 4 <= n; k += 4) {
      const o = <usize>k << 2;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(v128.load(src + o), sv)));
    }
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o) * scale);
  }
}

/** One innermost run of copy: n 4-byte values, element strides si (0 = broadcast) and di. */
function copyRun(src: usize, dst: usize, n: i32, si: i32, di: i32): void {
  if (si == 1 && di == 1) {
    memory.copy(dst, src, <usize>n << 2);
  } else if (si == 0 && di == 1) {
    const v = load<u32>(src);
    let i = 0;
    if (ASC_FEATURE_SIMD) {
      const vv = i32x4.splat(v);
      for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), vv);
    }
    for (; i < n; i++) store<u32>(dst + (<usize>i << 2), v);
  } else {
    const sb = <isize>si << 2, db = <isize>di << 2;
    let s = <isize>src, d = <isize>dst;
    for (let i = 0; i < n; i++, s += sb, d += db) store<u32>(<usize>d, load<u32>(<usize>s));
  }
}

/**
 * dst = src over a 4-axis iteration (n0 x n1 x n2 x n3, shorter shapes padded with 1s) of 4-byte
 * elements; s* and d* are element strides (0 = broadcast on the source), pointers at element 0.
 */
export function copy(
  src: usize, dst: usize, n0: i32, n1: i32, n2: i32, n3: i32, s0: i32, s1: i32, s2: i32, s3: i32, d0: i32, d1: i32, d2: i32, d3: i32,
): void {
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      for (let c = 0; c < n2; c++) {
        const so = (<isize>a * s0 + <isize>b * s1 + <isize>c * s2) << 2, doff = (<isize>a * d0 + <isize>b * d1 + <isize>c * d2) << 2;
        copyRun(<usize>(<isize>src + so), <usize>(<isize>dst + doff), n3, s3, d3);
      }
    }
  }
}

/**
 * Dropout of elements [lo, hi) (pointers at element 0): out = x / (1 - p) where the uniform of
 * element i is >= p, else 0. The uniform is src/util/rng.ts uniformAt's, bit for bit: word (i & 3)
 * of the Philox4x32-10 block for counter (i >> 2, 0, 0, 0) and key (seed, 0x0d0d), times 2^-32.
 */
export function dropout(x: usize, out: usize, lo: i32, hi: i32, pLow: i32, pHigh: i32, seed: i32): void {
  const p = reinterpret<f64>((<u64><u32>pHigh << 32) | <u64><u32>pLow); // f64 bits in two i32 words
  const keep = 1 / (1 - p);
  for (let b = lo >>> 2; (b << 2) < hi; b++) {
    let c0 = <u32>b, c1: u32 = 0, c2: u32 = 0, c3: u32 = 0, k0 = <u32>seed, k1: u32 = 0x0d0d;
    for (let r = 0; r < 10; r++) {
      const m0 = <u64>0xd2511f53 * <u64>c0, m1 = <u64>0xcd9e8d57 * <u64>c2;
      const n0 = <u32>(m1 >> 32) ^ c1 ^ k0, n2 = <u32>(m0 >> 32) ^ c3 ^ k1;
      c1 = <u32>m1;
      c3 = <u32>m0;
      c0 = n0;
      c2 = n2;
      k0 += 0x9e3779b9;
      k1 += 0xbb67ae85;
    }
    for (let w = 0; w < 4; w++) {
      const i = (b << 2) + w;
      if (i < lo || i >= hi) continue;
      const word = w == 0 ? c0 : w == 1 ? c1 : w == 2 ? c2 : c3;
      const k = <usize>i << 2;
      store<f32>(out + k, <f64>word * 2.3283064365386963e-10 >= p ? <f32>(<f64>load<f32>(x + k) * keep) : 0);
    }
  }
}

/** y = min(max(x, lo), hi) over n elements; mask (u8, when hasMask) = lo < x < hi. */
export function hardtanhMask(x: usize, y: usize, mask: usize, n: i32, loBits: i32, hiBits: i32, hasMask: i32): void {
  const lo = reinterpret<f32>(loBits), hi = reinterpret<f32>(hiBits);
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    store<f32>(y + (<usize>i << 2), min<f32>(hi, max<f32>(lo, v)));
    if (hasMask) store<u8>(mask + <usize>i, <u8>(v > lo && v < hi));
  }
}

/** out = x + bias[c] over [outer, C, inner], channels [c0, c1). */
export function channelAdd(x: usize, bias: usize, out: usize, outer: i32, C: i32, inner: i32, c0: i32, c1: i32): void {
  for (let o = 0; o < outer; o++) {
    for (let c = c0; c < c1; c++) {
      const off = (<usize>(o * C + c) * <usize>inner) << 2;
      const b = load<f32>(bias + (<usize>c << 2));
      const xp = x + off, op = out + off;
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        const bv = f32x4.splat(b);
        for (; i + 4 <= inner; i += 4) v128.store(op + (<usize>i << 2), f32x4.add(v128.load(xp + (<usize>i << 2)), bv));
      }
      for (; i < inner; i++) store<f32>(op + (<usize>i << 2), load<f32>(xp + (<usize>i << 2)) + b);
    }
  }
}

/**
 * Average pooling (padding counts in the divisor) of planes [p0, p1) (grad = 0), or its adjoint
 * (grad = 1: dx += gy spread over each window; x is then dx and out is gy).
 */
export function avgPool2d(
  x: usize, out: usize, p0: i32, p1: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32, grad: i32,
): void {
  const scale: f32 = <f32>(1.0 / <f64>(kh * kw));
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>h * <usize>w) << 2), op = out + ((<usize>p * <usize>outH * <usize>outW) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const y0 = max(0, oy * sh - ph), y1 = min(h, oy * sh - ph + kh);
      for (let ox = 0; ox < outW; ox++) {
        const x0 = max(0, ox * sw - pw), x1 = min(w, ox * sw - pw + kw);
        const o = op + ((<usize>(oy * outW + ox)) << 2);
        if (grad) {
          const g = load<f32>(o) * scale;
          for (let yy = y0; yy < y1; yy++) {
            for (let xx = x0; xx < x1; xx++) {
              const q = xp + ((<usize>(yy * w + xx)) << 2);
              store<f32>(q, load<f32>(q) + g);
            }
          }
        } else {
          let s: f32 = 0;
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += load<f32>(xp + ((<usize>(yy * w + xx)) << 2)) * scale;
          store<f32>(o, s);
        }
      }
    }
  }
}
