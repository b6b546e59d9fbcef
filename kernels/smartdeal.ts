// SmartDeal's decomposition rounds (mirrors smartdealProject / smartdealCodes of
// src/quant/smartdeal-kernels.ts, the oracle): the coefficient fit ce = w·pᵀ of the kept weight segments
// (float32 [rows, S]) on p (float64 [r, S]), its power-of-two codes and the basis step's normal
// equations, all in float64 with the reference's order of operations (every sum from 0, in order
// of j, rows in order): the same bits as the reference. Scalar (the sums' order is the contract);
// one thread. Wrapped by src/backends/wasm/smartdeal.ts.

const LEVELS = 7;

/** 2^e for e in [−1022, 1023] (the wrapper sends other emax to the reference). */
// @ts-ignore: decorator
@inline function pow2(e: i32): f64 {
  return reinterpret<f64>(<i64>(e + 1023) << 52);
}

/** Σ_j w[j]·p[j] from 0 in order of j. */
// @ts-ignore: decorator
@inline function dot(w: usize, p: usize, S: i32): f64 {
  let s: f64 = 0;
  for (let j = 0; j < S; j++) s += <f64>load<f32>(w + (<usize>j << 2)) * load<f64>(p + (<usize>j << 3));
  return s;
}

/** max |w_i·p_t| over rows i and basis rows t (NaN when one is NaN). */
export function smartdealProject(w: usize, p: usize, rows: i32, S: i32, r: i32): f64 {
  if (ASC_FEATURE_SIMD && S == 4 && r == 4) return project44(w, p, rows);
  let m: f64 = 0;
  const rowBytes = <usize>S << 2, pBytes = <usize>S << 3;
  for (let i = 0; i < rows; i++) {
    const wi = w + <usize>i * rowBytes;
    for (let t = 0; t < r; t++) m = max<f64>(m, Math.abs(dot(wi, p + <usize>t * pBytes, S)));
  }
  return m;
}

/**
 * codes [rows, r] (i32) = the power-of-two code of w_i·p_t under emax; returns how many changed.
 * sums ≠ 0: ctc [r, r] then ctw [r, S] (f64) += the rows' c_a·c_b and c_a·w_j (c_a = 0 skipped).
 * Branch-free (the codes are data-dependent): the nearest level ±2^e of |s| ≥ 2^emin / 2 has
 * e = the exponent of |s| rounded up when its mantissa is ≥ 1.5 (the exponent field of its bits plus
 * half a mantissa), clamped to [emin, emax]; a skipped c_a = 0 adds +0 instead (the sums start at +0
 * and never become −0, so +0 leaves them unchanged), except in ctw where w_j·0 could be NaN.
 */
export function smartdealCodes(w: usize, p: usize, codes: usize, sums: usize, rows: i32, S: i32, r: i32, emax: i32): i32 {
  if (ASC_FEATURE_SIMD && S == 4 && r == 4) return codes44(w, p, codes, sums, rows, emax);
  const emin = emax - LEVELS + 1, t0 = pow2(emin - 1);
  const rowBytes = <usize>S << 2, pBytes = <usize>S << 3, ctw = sums + ((<usize>(r * r)) << 3);
  let changed = 0;
  for (let i = 0; i < rows; i++) {
    const wi = w + <usize>i * rowBytes, ci = codes + ((<usize>i * <usize>r) << 2);
    for (let t = 0; t < r; t++) {
      const c = codeOf(dot(wi, p + <usize>t * pBytes, S), emin, t0), at = ci + (<usize>t << 2);
      changed += <i32>(c != load<i32>(at));
      store<i32>(at, c);
    }
    if (sums == 0) continue;
    if (r == 4) {
      // Rank 4 (the default): the row's code values once, in locals.
      const c0 = codeValue(load<i32>(ci), emax), c1 = codeValue(load<i32>(ci, 4), emax);
      const c2 = codeValue(load<i32>(ci, 8), emax), c3 = codeValue(load<i32>(ci, 12), emax);
      normalRow(sums, ctw, wi, S, c0, c0, c1, c2, c3, 0);
      normalRow(sums, ctw, wi, S, c1, c0, c1, c2, c3, 1);
      normalRow(sums, ctw, wi, S, c2, c0, c1, c2, c3, 2);
      normalRow(sums, ctw, wi, S, c3, c0, c1, c2, c3, 3);
      continue;
    }
    for (let a = 0; a < r; a++) {
      const ca = codeValue(load<i32>(ci + (<usize>a << 2)), emax);
      const ra = sums + ((<usize>(a * r)) << 3);
      for (let b = 0; b < r; b++) {
        const at = ra + (<usize>b << 3);
        store<f64>(at, load<f64>(at) + ca * codeValue(load<i32>(ci + (<usize>b << 2)), emax));
      }
      const wa = ctw + ((<usize>(a * S)) << 3);
      for (let j = 0; j < S; j++) {
        const at = wa + (<usize>j << 3);
        store<f64>(at, load<f64>(at) + select<f64>(ca * <f64>load<f32>(wi + (<usize>j << 2)), 0, ca != 0));
      }
    }
  }
  return changed;
}

/** The power-of-two code of s (thresholds: see smartdealCodes), t0 = 2^emin / 2. */
// @ts-ignore: decorator
@inline function codeOf(s: f64, emin: i32, t0: f64): i32 {
  const a = Math.abs(s);
  const e = <i32>((reinterpret<u64>(a) + (<u64>1 << 51)) >> 52) - 1023;
  const j = min<i32>(LEVELS - 1, max<i32>(0, e - emin));
  return select<i32>((s < 0 ? 8 : 0) + LEVELS - j, 0, a >= t0);
}

// Segment = rank = 4 on f64x2 lanes (basis rows t = 0, 1 and 2, 3 side by side; the same sums
// per lane as the scalar loops, so the same bits).

/** Lanes (p[t, j], p[t + 1, j]). */
// @ts-ignore: decorator
@inline function pairAt(p: usize, t: i32, j: i32): v128 {
  return f64x2.replace_lane(f64x2.splat(load<f64>(p + (<usize>(t * 4 + j) << 3))), 1, load<f64>(p + (<usize>((t + 1) * 4 + j) << 3)));
}

/** Row i's (ce_0, ce_1) and (ce_2, ce_3): sums from 0 in order of j. */
// @ts-ignore: decorator
@inline function fit44(wi: usize, a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  let s = f64x2.add(f64x2.splat(0), f64x2.mul(f64x2.splat(<f64>load<f32>(wi)), a0));
  s = f64x2.add(s, f64x2.mul(f64x2.splat(<f64>load<f32>(wi, 4)), a1));
  s = f64x2.add(s, f64x2.mul(f64x2.splat(<f64>load<f32>(wi, 8)), a2));
  return f64x2.add(s, f64x2.mul(f64x2.splat(<f64>load<f32>(wi, 12)), a3));
}

function project44(w: usize, p: usize, rows: i32): f64 {
  const p0 = pairAt(p, 0, 0), p1 = pairAt(p, 0, 1), p2 = pairAt(p, 0, 2), p3 = pairAt(p, 0, 3);
  const q0 = pairAt(p, 2, 0), q1 = pairAt(p, 2, 1), q2 = pairAt(p, 2, 2), q3 = pairAt(p, 2, 3);
  let m = f64x2.splat(0);
  for (let i = 0; i < rows; i++) {
    const wi = w + (<usize>i << 4);
    m = f64x2.max(m, f64x2.abs(fit44(wi, p0, p1, p2, p3)));
    m = f64x2.max(m, f64x2.abs(fit44(wi, q0, q1, q2, q3)));
  }
  return max<f64>(f64x2.extract_lane(m, 0), f64x2.extract_lane(m, 1));
}

function codes44(w: usize, p: usize, codes: usize, sums: usize, rows: i32, emax: i32): i32 {
  const emin = emax - LEVELS + 1, t0 = pow2(emin - 1);
  const p0 = pairAt(p, 0, 0), p1 = pairAt(p, 0, 1), p2 = pairAt(p, 0, 2), p3 = pairAt(p, 0, 3);
  const q0 = pairAt(p, 2, 0), q1 = pairAt(p, 2, 1), q2 = pairAt(p, 2, 2), q3 = pairAt(p, 2, 3);
  const zero = f64x2.splat(0), on = sums != 0;
  // ctc rows a as (c_a·c_0, c_a·c_1), (c_a·c_2, c_a·c_3); ctw rows a as (w_0, w_1), (w_2, w_3) terms.
  let t00 = zero, t01 = zero, t10 = zero, t11 = zero, t20 = zero, t21 = zero, t30 = zero, t31 = zero;
  let u00 = zero, u01 = zero, u10 = zero, u11 = zero, u20 = zero, u21 = zero, u30 = zero, u31 = zero;
  if (on) {
    t00 = v128.load(sums); t01 = v128.load(sums, 16); t10 = v128.load(sums, 32); t11 = v128.load(sums, 48);
    t20 = v128.load(sums, 64); t21 = v128.load(sums, 80); t30 = v128.load(sums, 96); t31 = v128.load(sums, 112);
    u00 = v128.load(sums, 128); u01 = v128.load(sums, 144); u10 = v128.load(sums, 160); u11 = v128.load(sums, 176);
    u20 = v128.load(sums, 192); u21 = v128.load(sums, 208); u30 = v128.load(sums, 224); u31 = v128.load(sums, 240);
  }
  let changed = 0;
  for (let i = 0; i < rows; i++) {
    const wi = w + (<usize>i << 4), ci = codes + (<usize>i << 4);
    const s01 = fit44(wi, p0, p1, p2, p3), s23 = fit44(wi, q0, q1, q2, q3);
    const k0 = codeOf(f64x2.extract_lane(s01, 0), emin, t0), k1 = codeOf(f64x2.extract_lane(s01, 1), emin, t0);
    const k2 = codeOf(f64x2.extract_lane(s23, 0), emin, t0), k3 = codeOf(f64x2.extract_lane(s23, 1), emin, t0);
    changed += <i32>(k0 != load<i32>(ci)) + <i32>(k1 != load<i32>(ci, 4)) + <i32>(k2 != load<i32>(ci, 8)) + <i32>(k3 != load<i32>(ci, 12));
    store<i32>(ci, k0);
    store<i32>(ci, k1, 4);
    store<i32>(ci, k2, 8);
    store<i32>(ci, k3, 12);
    if (!on) continue;
    const c0 = codeValue(k0, emax), c1 = codeValue(k1, emax), c2 = codeValue(k2, emax), c3 = codeValue(k3, emax);
    const c01 = f64x2.replace_lane(f64x2.splat(c0), 1, c1), c23 = f64x2.replace_lane(f64x2.splat(c2), 1, c3);
    const w01 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(wi)), 1, <f64>load<f32>(wi, 4));
    const w23 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(wi, 8)), 1, <f64>load<f32>(wi, 12));
    let v = f64x2.splat(c0), keep = f64x2.ne(v, zero);
    t00 = f64x2.add(t00, f64x2.mul(v, c01)); t01 = f64x2.add(t01, f64x2.mul(v, c23));
    u00 = f64x2.add(u00, v128.and(f64x2.mul(v, w01), keep)); u01 = f64x2.add(u01, v128.and(f64x2.mul(v, w23), keep));
    v = f64x2.splat(c1); keep = f64x2.ne(v, zero);
    t10 = f64x2.add(t10, f64x2.mul(v, c01)); t11 = f64x2.add(t11, f64x2.mul(v, c23));
    u10 = f64x2.add(u10, v128.and(f64x2.mul(v, w01), keep)); u11 = f64x2.add(u11, v128.and(f64x2.mul(v, w23), keep));
    v = f64x2.splat(c2); keep = f64x2.ne(v, zero);
    t20 = f64x2.add(t20, f64x2.mul(v, c01)); t21 = f64x2.add(t21, f64x2.mul(v, c23));
    u20 = f64x2.add(u20, v128.and(f64x2.mul(v, w01), keep)); u21 = f64x2.add(u21, v128.and(f64x2.mul(v, w23), keep));
    v = f64x2.splat(c3); keep = f64x2.ne(v, zero);
    t30 = f64x2.add(t30, f64x2.mul(v, c01)); t31 = f64x2.add(t31, f64x2.mul(v, c23));
    u30 = f64x2.add(u30, v128.and(f64x2.mul(v, w01), keep)); u31 = f64x2.add(u31, v128.and(f64x2.mul(v, w23), keep));
  }
  if (on) {
    v128.store(sums, t00); v128.store(sums, t01, 16); v128.store(sums, t10, 32); v128.store(sums, t11, 48);
    v128.store(sums, t20, 64); v128.store(sums, t21, 80); v128.store(sums, t30, 96); v128.store(sums, t31, 112);
    v128.store(sums, u00, 128); v128.store(sums, u01, 144); v128.store(sums, u10, 160); v128.store(sums, u11, 176);
    v128.store(sums, u20, 192); v128.store(sums, u21, 208); v128.store(sums, u30, 224); v128.store(sums, u31, 240);
  }
  return changed;
}

/** Rank 4: row a of ctc += ca·(c0, c1, c2, c3), row a of ctw += ca·w (ca = 0 adds +0 to ctw). */
// @ts-ignore: decorator
@inline function normalRow(ctc: usize, ctw: usize, wi: usize, S: i32, ca: f64, c0: f64, c1: f64, c2: f64, c3: f64, a: i32): void {
  const ra = ctc + (<usize>a << 5);
  store<f64>(ra, load<f64>(ra) + ca * c0);
  store<f64>(ra, load<f64>(ra, 8) + ca * c1, 8);
  store<f64>(ra, load<f64>(ra, 16) + ca * c2, 16);
  store<f64>(ra, load<f64>(ra, 24) + ca * c3, 24);
  const wa = ctw + ((<usize>(a * S)) << 3), keep = ca != 0;
  for (let j = 0; j < S; j++) {
    const at = wa + (<usize>j << 3);
    store<f64>(at, load<f64>(at) + select<f64>(ca * <f64>load<f32>(wi + (<usize>j << 2)), 0, keep));
  }
}

/** ±2^(emax − j) of code sign·8 + j + 1 (0 for code 0), as coeffValue. */
// @ts-ignore: decorator
@inline function codeValue(c: i32, emax: i32): f64 {
  const v = pow2(emax - ((c & 7) - 1));
  return select<f64>(select<f64>(-v, v, (c & 8) != 0), 0, c != 0);
}
