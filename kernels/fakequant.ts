// Fake quantization on float32 (mirrors src/backends/reference/fakequant.ts, the oracle): the
// quantizer maps' forward, pseudo-gradient ∂q/∂x and learned-scalar gradient ∂q/∂p, evaluated in
// double precision as the reference does, so that every map built from comparisons, +, −, ×, ÷ and
// rounding gives the reference's bits; the maps through tanh, cosh and sin (ede, dte stage 2, swish,
// dorefa weights, fourier) agree within a stated tolerance (test/backends/fakequant.test.ts).
// No table-driven Math (exp, pow, log, sin, cos, cosh link lookup tables as data segments, which
// every instantiation would write into the arena's shared memory): tanh (on expm1), expm1 and the
// polynomial sinPoly below only.
// SIMD paths where the map is a compare (sign, the clipped straight-through gradient, ternary
// codes) or EDE's tanh surrogate (f32 lanes: within the tolerance). Wrapped by
// src/backends/wasm/fakequant.ts (kind codes, parameters as f64 word pairs, thread split).

import { expv } from './vmath';

// Kind codes: the order of FAKE_QUANT_KINDS in src/backends/wasm/fakequant.ts.
const SIGN = 0, APPROX_SIGN = 1, SWISH_SIGN = 2, HEAVISIDE = 3, TERN = 4, DOREFA_ACT = 5, DOREFA_WEIGHT = 6, PACT = 7;
const LSQ = 8, EDE = 9, DTE = 10, FOURIER = 11, NESTED = 12, TTQ_POS = 13, TTQ_NEG = 14, PRUNED_TERN = 15;

// @ts-ignore: decorator
@inline function f64From(lo: i32, hi: i32): f64 {
  return reinterpret<f64>((<u64><u32>hi << 32) | <u64><u32>lo);
}

/** JavaScript's roundHalfAway (src/quant/kernels.ts): x < 0 ? −Math.round(−x) : Math.round(x), Math.round's ties up included. */
// @ts-ignore: decorator
@inline function roundHalfAway(x: f64): f64 {
  const y = x < 0 ? -x : x;
  let r = Math.floor(y);
  if (y - r >= 0.5) r += 1;
  return x < 0 ? -r : r;
}

// @ts-ignore: decorator
@inline function sign(x: f64): f64 {
  return x >= 0 ? 1 : -1;
}

// The map's parameters (a0..a4 as the wrapper packs them, p the learned scalar): globals, not an
// object (the kernels never allocate).
let a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0, pv: f64 = 0;

// @ts-ignore: decorator
@inline function forwardOf(kind: i32, x: f64): f64 {
  switch (kind) {
    case HEAVISIDE: return x > 0 ? 1 : 0;
    case TERN: return x >= a0 ? 1 : x <= -a0 ? -1 : 0;
    case DOREFA_ACT: return roundHalfAway(min<f64>(1, max<f64>(0, x)) * a0) / a0;
    case DOREFA_WEIGHT: return (2 * roundHalfAway((Math.tanh(x) / (2 * a1) + 0.5) * a0)) / a0 - 1;
    case PACT: return (roundHalfAway((min<f64>(pv, max<f64>(0, x)) * a0) / pv) * pv) / a0;
    case LSQ: return roundHalfAway(min<f64>(a1, max<f64>(-a0, x / pv))) * pv;
    case NESTED: {
      const c = min<f64>(127, max<f64>(-128, roundHalfAway(x))) + 0;
      if (a0 == 0) return c;
      const step = reinterpret<f64>(<i64>(<i32>a0 + 1023) << 52); // 2^drop, drop an integer in 0..6
      return Math.floor(c / step) * step + step / 2;
    }
    case TTQ_POS: return x >= a0 ? pv : 0;
    case TTQ_NEG: return x <= -a0 ? -pv : 0;
    case PRUNED_TERN: return Math.abs(x) >= a0 ? sign(x) : 0;
    default: return sign(x); // sign, approx_sign, swish_sign, ede, dte, fourier
  }
}

/** 1 − tanh²(y) as the reference evaluates it. */
// @ts-ignore: decorator
@inline function sech2(y: f64): f64 {
  const t = Math.tanh(y);
  return 1 - t * t;
}

/**
 * sin x for moderate |x| (the wrapper sends Fourier arguments 2nωx past 100 to the reference): x − kπ
 * (π in two parts), then the odd Taylor polynomial to x^19 on [−π/2, π/2] (error < 1e-15).
 */
function sinPoly(x: f64): f64 {
  const k = Math.floor(x / Math.PI + 0.5);
  const r = x - k * 3.141592653589793 - k * 1.2246467991473532e-16, r2 = r * r;
  let p = -1.0 / 121645100408832000.0;
  p = p * r2 + 1.0 / 355687428096000.0;
  p = p * r2 - 1.0 / 1307674368000.0;
  p = p * r2 + 1.0 / 6227020800.0;
  p = p * r2 - 1.0 / 39916800.0;
  p = p * r2 + 1.0 / 362880.0;
  p = p * r2 - 1.0 / 5040.0;
  p = p * r2 + 1.0 / 120.0;
  p = p * r2 - 1.0 / 6.0;
  const s = r + r * r2 * p;
  return k - 2 * Math.floor(k / 2) != 0 ? -s : s; // odd k (no integer cast: k may be NaN)
}

/**
 * out[i] = sin(x[i] + phase) for i < n, x + phase in f64 (sinPoly); stores 1 at status when a
 * finite argument is past ±1e5, where the reduction loses the stated accuracy (the wrapper then
 * runs the reference).
 */
export function sin(x: usize, out: usize, n: i32, pl: i32, ph: i32, status: usize): void {
  const phase = f64From(pl, ph);
  let wide = false, i = 0;
  if (ASC_FEATURE_SIMD) {
    // Four values per step on two f64x2 chains (sinPoly's operations per lane: the same bits).
    const pv = f64x2.splat(phase), big = f64x2.splat(1e5);
    let far = f64x2.splat(0);
    for (; i + 4 <= n; i += 4) {
      const k = <usize>i << 2, v = v128.load(x + k);
      const a = f64x2.add(f64x2.promote_low_f32x4(v), pv), b = f64x2.add(promoteHigh(v), pv);
      // Finite (a − a = 0) and past ±1e5: all ones in `far`.
      far = v128.or(far, v128.and(f64x2.gt(f64x2.abs(a), big), f64x2.eq(f64x2.sub(a, a), f64x2.splat(0))));
      far = v128.or(far, v128.and(f64x2.gt(f64x2.abs(b), big), f64x2.eq(f64x2.sub(b, b), f64x2.splat(0))));
      v128.store(out + k, demote(sinPolyLanes(a), sinPolyLanes(b)));
    }
    wide = v128.any_true(far);
  }
  for (; i < n; i++) {
    const k = <usize>i << 2, a = <f64>load<f32>(x + k) + phase;
    wide = wide || (Math.abs(a) > 1e5 && a - a == 0);
    store<f32>(out + k, <f32>sinPoly(a));
  }
  if (wide) store<i32>(status, 1);
}

/** sinPoly on f64x2 lanes, the same operations per lane (sinLanes below is the f32x4 one of the Fourier gradient). */
// @ts-ignore: decorator
@inline function sinPolyLanes(x: v128): v128 {
  const k = f64x2.floor(f64x2.add(f64x2.div(x, f64x2.splat(Math.PI)), f64x2.splat(0.5)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(3.141592653589793))), f64x2.mul(k, f64x2.splat(1.2246467991473532e-16)));
  const r2 = f64x2.mul(r, r);
  let p = f64x2.splat(-1.0 / 121645100408832000.0);
  p = f64x2.add(f64x2.mul(p, r2), f64x2.splat(1.0 / 355687428096000.0));
  p = f64x2.sub(f64x2.mul(p, r2), f64x2.splat(1.0 / 1307674368000.0));
  p = f64x2.add(f64x2.mul(p, r2), f64x2.splat(1.0 / 6227020800.0));
  p = f64x2.sub(f64x2.mul(p, r2), f64x2.splat(1.0 / 39916800.0));
  p = f64x2.add(f64x2.mul(p, r2), f64x2.splat(1.0 / 362880.0));
  p = f64x2.sub(f64x2.mul(p, r2), f64x2.splat(1.0 / 5040.0));
  p = f64x2.add(f64x2.mul(p, r2), f64x2.splat(1.0 / 120.0));
  p = f64x2.sub(f64x2.mul(p, r2), f64x2.splat(1.0 / 6.0));
  const s = f64x2.add(r, f64x2.mul(f64x2.mul(r, r2), p));
  const odd = f64x2.ne(f64x2.sub(k, f64x2.mul(f64x2.splat(2), f64x2.floor(f64x2.div(k, f64x2.splat(2))))), f64x2.splat(0));
  return v128.bitselect(f64x2.neg(s), s, odd);
}

/** Σ_{i<n} cos((2i+1)θ) = sin(2nθ) / (2 sin θ) (n at θ = 0). */
function fourierSum(theta: f64, n: f64): f64 {
  const s = sinPoly(theta);
  if (s == 0) return n;
  return sinPoly(2 * n * theta) / (2 * s);
}

// @ts-ignore: decorator
@inline function dxOf(kind: i32, x: f64): f64 {
  switch (kind) {
    case SIGN: case HEAVISIDE: return a0 == 0 || Math.abs(x) <= a1 ? 1 : 0;
    case TERN: return a1 == 0 || Math.abs(x) <= a2 ? 1 : 0;
    case APPROX_SIGN: return Math.abs(x) <= 1 ? 2 - 2 * Math.abs(x) : 0;
    case SWISH_SIGN: {
      const bx = a0 * x;
      // cosh through expm1: e^|bx| = 1 + expm1(|bx|) (Infinity past ~710, where the surrogate is 0).
      const e = 1 + Math.expm1(Math.abs(bx));
      return (a0 * (2 - bx * Math.tanh(bx / 2))) / (1 + 0.5 * (e + 1 / e));
    }
    case DOREFA_ACT: return x >= 0 && x <= 1 ? 1 : 0;
    case DOREFA_WEIGHT: return sech2(x) / a1;
    case PACT: return x >= 0 && x < pv ? 1 : 0;
    case LSQ: return x / pv > -a0 && x / pv < a1 ? 1 : 0;
    case EDE: return a1 * a0 * sech2(a0 * x);
    case DTE: return a0 == 1 ? (Math.abs(x) <= a1 * a4 ? 1 : 0) : a3 * a2 * sech2((a2 * x) / a4);
    case FOURIER: return Math.abs(x) > 1 ? 0 : ((4 * a0) / Math.PI) * fourierSum(a0 * x, a1);
    case NESTED: return Math.abs(x) <= 128 ? 1 : 0;
    case TTQ_POS: return x >= a0 ? pv : x > -a0 ? 1 : 0;
    case TTQ_NEG: return x <= -a0 ? pv : 0;
    case PRUNED_TERN: return Math.abs(x) >= a0 ? 1 : Math.abs(x) / a0;
    default: return 0;
  }
}

// @ts-ignore: decorator
@inline function dpOf(kind: i32, x: f64): f64 {
  switch (kind) {
    case PACT: return x >= pv ? 1 : 0;
    case LSQ: {
      const r = x / pv;
      return (r <= -a0 ? -a0 : r >= a1 ? a1 : roundHalfAway(r) - r) * a2;
    }
    case TTQ_POS: return x >= a0 ? 1 : 0;
    case TTQ_NEG: return x <= -a0 ? -1 : 0;
    default: return 0;
  }
}

function unpack(a0l: i32, a0h: i32, a1l: i32, a1h: i32, a2l: i32, a2h: i32, a3l: i32, a3h: i32, a4l: i32, a4h: i32, pl: i32, ph: i32): void {
  a0 = f64From(a0l, a0h);
  a1 = f64From(a1l, a1h);
  a2 = f64From(a2l, a2h);
  a3 = f64From(a3l, a3h);
  a4 = f64From(a4l, a4h);
  pv = f64From(pl, ph);
}

/** The largest f32 ≤ v (v not NaN): |x| ≤ v ⇔ |x| ≤ it for every f32 x. */
function f32AtMost(v: f64): f32 {
  let c = <f32>v;
  if (<f64>c > v) c = c > 0 ? reinterpret<f32>(reinterpret<i32>(c) - 1) : c == 0 ? -reinterpret<f32>(1) : reinterpret<f32>(reinterpret<i32>(c) + 1);
  return c;
}

/** The smallest f32 ≥ v (v not NaN): x ≥ v ⇔ x ≥ it for every f32 x. */
function f32AtLeast(v: f64): f32 {
  return -f32AtMost(-v);
}

/** Whether a map's forward is sign(x). */
// @ts-ignore: decorator
@inline function isSign(kind: i32): bool {
  return kind == SIGN || kind == APPROX_SIGN || kind == SWISH_SIGN || kind == EDE || kind == DTE || kind == FOURIER;
}

/** roundHalfAway on f64x2 lanes: ⌊|c|⌋ (+1 at a fraction ≥ ½) with c's sign (−0 and NaN kept). */
// @ts-ignore: decorator
@inline function roundHalfAwayLanes(c: v128): v128 {
  const y = f64x2.abs(c);
  const r = f64x2.floor(y);
  const up = v128.and(f64x2.ge(f64x2.sub(y, r), f64x2.splat(0.5)), f64x2.splat(1));
  return v128.or(f64x2.add(r, up), v128.and(c, i64x2.splat(0x8000000000000000)));
}

/** Lanes 0-1 and 2-3 of f32x4 v as f64x2 (low, high). */
// @ts-ignore: decorator
@inline function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
}

/** Two f64x2 back to one f32x4 (each lane rounded once, as the reference's store). */
// @ts-ignore: decorator
@inline function demote(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** LSQ's forward on f64x2 lanes v: roundHalfAway(min(Q_P, max(−Q_N, v/s)))·s (pmax/pmin keep NaN and the −0 of JavaScript's max). */
// @ts-ignore: decorator
@inline function lsqLanes(v: v128, s: v128, lo: v128, hi: v128): v128 {
  return f64x2.mul(roundHalfAwayLanes(f64x2.pmin(f64x2.pmax(f64x2.div(v, s), lo), hi)), s);
}

/** LSQ's g·∂q/∂x (wantX) or g·∂q/∂p on f64x2 lanes (r = v/s; g null: ones). */
// @ts-ignore: decorator
@inline function lsqGradLanes(r: v128, g: v128, lo: v128, hi: v128, gs: v128, wantX: bool): v128 {
  if (wantX) return f64x2.mul(g, v128.and(v128.and(f64x2.gt(r, lo), f64x2.lt(r, hi)), f64x2.splat(1)));
  const inner = f64x2.sub(roundHalfAwayLanes(r), r);
  const t = v128.bitselect(lo, v128.bitselect(hi, inner, f64x2.ge(r, hi)), f64x2.le(r, lo));
  return f64x2.mul(g, f64x2.mul(t, gs));
}

/** sin on f32x4 lanes for moderate arguments: x − kπ (π in two parts), Taylor to x^11, sign flipped for odd k. */
// @ts-ignore: decorator
@inline function sinLanes(x: v128): v128 {
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(<f32>(1 / Math.PI))));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(<f32>3.140625))), f32x4.mul(k, f32x4.splat(<f32>9.676535897932795e-4)));
  const r2 = f32x4.mul(r, r);
  let p = f32x4.splat(<f32>(-1.0 / 39916800.0));
  p = f32x4.add(f32x4.mul(p, r2), f32x4.splat(<f32>(1.0 / 362880.0)));
  p = f32x4.add(f32x4.mul(p, r2), f32x4.splat(<f32>(-1.0 / 5040.0)));
  p = f32x4.add(f32x4.mul(p, r2), f32x4.splat(<f32>(1.0 / 120.0)));
  p = f32x4.add(f32x4.mul(p, r2), f32x4.splat(<f32>(-1.0 / 6.0)));
  const s = f32x4.add(r, f32x4.mul(f32x4.mul(r, r2), p));
  return v128.xor(s, i32x4.shl(i32x4.trunc_sat_f32x4_s(k), 31));
}

/** out[i] = q(x[i]) for i < n (the wrapper offsets the pointers of a thread's part). */
export function fakeQuant(
  kind: i32, x: usize, out: usize, n: i32,
  a0l: i32, a0h: i32, a1l: i32, a1h: i32, a2l: i32, a2h: i32, a3l: i32, a3h: i32, a4l: i32, a4h: i32, pl: i32, ph: i32,
): void {
  unpack(a0l, a0h, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, pl, ph);
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    if (isSign(kind)) {
      const one = f32x4.splat(1), minus = f32x4.splat(-1), z = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2;
        v128.store(out + k, v128.bitselect(one, minus, f32x4.ge(v128.load(x + k), z)));
      }
    } else if (kind == LSQ) {
      const sv = f64x2.splat(pv), lo = f64x2.splat(-a0), hi = f64x2.splat(a1);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k);
        v128.store(out + k, demote(lsqLanes(f64x2.promote_low_f32x4(v), sv, lo, hi), lsqLanes(promoteHigh(v), sv, lo, hi)));
      }
    } else if (kind == NESTED) {
      // 2^drop·⌊q8 / 2^drop⌋ + 2^(drop−1), q8 = clamp(roundHalfAway(u), −128, 127) + 0 (no −0).
      const lo = f64x2.splat(-128), hi = f64x2.splat(127), z = f64x2.splat(0);
      const step = reinterpret<f64>(<i64>(<i32>a0 + 1023) << 52), sv = f64x2.splat(step), half = f64x2.splat(step / 2);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k);
        let c0 = f64x2.add(f64x2.pmin(f64x2.pmax(roundHalfAwayLanes(f64x2.promote_low_f32x4(v)), lo), hi), z);
        let c1 = f64x2.add(f64x2.pmin(f64x2.pmax(roundHalfAwayLanes(promoteHigh(v)), lo), hi), z);
        if (a0 != 0) {
          c0 = f64x2.add(f64x2.mul(f64x2.floor(f64x2.div(c0, sv)), sv), half);
          c1 = f64x2.add(f64x2.mul(f64x2.floor(f64x2.div(c1, sv)), sv), half);
        }
        v128.store(out + k, demote(c0, c1));
      }
    } else if (kind == PRUNED_TERN && !isNaN(a0)) {
      const t = f32x4.splat(f32AtLeast(a0)), one = f32x4.splat(1), minus = f32x4.splat(-1), z = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k);
        const s = v128.bitselect(one, minus, f32x4.ge(v, z));
        v128.store(out + k, v128.and(s, f32x4.ge(f32x4.abs(v), t)));
      }
    } else if (kind == TERN && !isNaN(a0)) {
      const t = f32x4.splat(f32AtLeast(a0)), nt = f32x4.neg(t), one = f32x4.splat(1);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k);
        const up = v128.and(one, f32x4.ge(v, t)), down = v128.and(f32x4.neg(one), v128.andnot(f32x4.le(v, nt), f32x4.ge(v, t)));
        v128.store(out + k, v128.or(up, down));
      }
    }
  }
  for (; i < n; i++) {
    const k = <usize>i << 2;
    store<f32>(out + k, <f32>forwardOf(kind, <f64>load<f32>(x + k)));
  }
}

/**
 * gx[i] = g[i]·∂q/∂x and gp[i] = g[i]·∂q/∂p for i < n (flags: 1 g given, 2 gx wanted, 4 gp
 * wanted; without g the derivatives themselves).
 */
export function fakeQuantGrad(
  kind: i32, x: usize, g: usize, gx: usize, gp: usize, n: i32, flags: i32,
  a0l: i32, a0h: i32, a1l: i32, a1h: i32, a2l: i32, a2h: i32, a3l: i32, a3h: i32, a4l: i32, a4h: i32, pl: i32, ph: i32,
): void {
  unpack(a0l, a0h, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, pl, ph);
  const hasG = (flags & 1) != 0, wantX = (flags & 2) != 0, wantP = (flags & 4) != 0;
  let i = 0;
  if (ASC_FEATURE_SIMD && kind == LSQ) {
    const sv = f64x2.splat(pv), lo = f64x2.splat(-a0), hi = f64x2.splat(a1), gs = f64x2.splat(a2), one = f64x2.splat(1);
    for (; i + 4 <= n; i += 4) {
      const k = <usize>i << 2, v = v128.load(x + k), gv = hasG ? v128.load(g + k) : f32x4.splat(1);
      const r0 = f64x2.div(f64x2.promote_low_f32x4(v), sv), r1 = f64x2.div(promoteHigh(v), sv);
      const g0 = hasG ? f64x2.promote_low_f32x4(gv) : one, g1 = hasG ? promoteHigh(gv) : one;
      if (wantX) v128.store(gx + k, demote(lsqGradLanes(r0, g0, lo, hi, gs, true), lsqGradLanes(r1, g1, lo, hi, gs, true)));
      if (wantP) v128.store(gp + k, demote(lsqGradLanes(r0, g0, lo, hi, gs, false), lsqGradLanes(r1, g1, lo, hi, gs, false)));
    }
  }
  if (ASC_FEATURE_SIMD && wantX && !wantP) {
    // The straight-through gradient: g (or 1) where |x| ≤ clip, else g·0.
    // DTE's first stage is the straight-through gradient clipped at width·σ, nested's at 128.
    const dte1 = kind == DTE && a0 == 1, ste = kind == SIGN || kind == HEAVISIDE || kind == TERN || kind == NESTED || dte1;
    const clipped = kind == TERN ? a1 != 0 : kind == NESTED || dte1 || a0 != 0;
    const clip = kind == TERN ? a2 : kind == NESTED ? 128 : dte1 ? a1 * a4 : a1;
    if (ste && !(clipped && isNaN(clip))) {
      const c = f32x4.splat(clipped ? f32AtMost(clip) : Infinity), one = f32x4.splat(1), z = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k);
        // NaN x passes only unclipped (the reference's 1 without a clip; |NaN| ≤ clip is false).
        const pass = clipped ? f32x4.le(f32x4.abs(v), c) : v128.or(f32x4.le(f32x4.abs(v), c), f32x4.ne(v, v));
        const d = v128.bitselect(one, z, pass);
        v128.store(gx + k, hasG ? f32x4.mul(v128.load(g + k), d) : d);
      }
    } else if (kind == PRUNED_TERN) {
      // g·(|x| ≥ Δ ? 1 : |x|/Δ) on f64x2 lanes (the reference's double division).
      const t = f64x2.splat(a0), one = f64x2.splat(1);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k), gv = hasG ? v128.load(g + k) : f32x4.splat(1);
        const x0 = f64x2.abs(f64x2.promote_low_f32x4(v)), x1 = f64x2.abs(promoteHigh(v));
        const d0 = v128.bitselect(one, f64x2.div(x0, t), f64x2.ge(x0, t)), d1 = v128.bitselect(one, f64x2.div(x1, t), f64x2.ge(x1, t));
        v128.store(gx + k, hasG ? demote(f64x2.mul(f64x2.promote_low_f32x4(gv), d0), f64x2.mul(promoteHigh(gv), d1)) : demote(d0, d1));
      }
    } else if (kind == FOURIER) {
      // (4ω/π)·sin(2nθ)/(2 sin θ), θ = ωx, for |x| ≤ 1 (n at θ = 0; f32 lanes: within the tolerance).
      const w = f32x4.splat(<f32>a0), n2 = f32x4.splat(<f32>(2 * a1)), nv = f32x4.splat(<f32>a1), c = f32x4.splat(<f32>((4 * a0) / Math.PI));
      const one = f32x4.splat(1), z = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2, v = v128.load(x + k), theta = f32x4.mul(w, v), st = sinLanes(theta);
        const ratio = f32x4.div(sinLanes(f32x4.mul(n2, theta)), f32x4.add(st, st));
        const sum = v128.bitselect(nv, ratio, f32x4.eq(st, z));
        // |x| > 1 gives 0 (NaN fails the compare and keeps the series' NaN, as the reference).
        const d = v128.andnot(f32x4.mul(c, sum), f32x4.gt(f32x4.abs(v), one));
        v128.store(gx + k, hasG ? f32x4.mul(v128.load(g + k), d) : d);
      }
    } else if (kind == EDE || (kind == DTE && !dte1)) {
      // k·t·sech²(c·x) = k·t·4e/(1 + e)², e = exp(−2|c·x|), c = t (EDE) or t/σ (DTE's second
      // stage): no cancellation where tanh → 1.
      const ede = kind == EDE, c = ede ? a0 : a2 / a4, kt = ede ? a1 * a0 : a3 * a2;
      const t = f32x4.splat(<f32>c), kt4 = f32x4.splat(<f32>(4 * kt)), one = f32x4.splat(1);
      for (; i + 4 <= n; i += 4) {
        const k = <usize>i << 2;
        const e = expv(f32x4.mul(f32x4.splat(-2), f32x4.abs(f32x4.mul(t, v128.load(x + k)))));
        const s = f32x4.add(one, e), d = f32x4.div(f32x4.mul(kt4, e), f32x4.mul(s, s));
        v128.store(gx + k, hasG ? f32x4.mul(v128.load(g + k), d) : d);
      }
    }
  }
  for (; i < n; i++) {
    const k = <usize>i << 2, v = <f64>load<f32>(x + k), gv: f64 = hasG ? <f64>load<f32>(g + k) : 1;
    if (wantX) store<f32>(gx + k, <f32>(hasG ? gv * dxOf(kind, v) : dxOf(kind, v)));
    if (wantP) store<f32>(gp + k, <f32>(hasG ? gv * dpOf(kind, v) : dpOf(kind, v)));
  }
}
