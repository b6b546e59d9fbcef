// SmartDeal's decomposition rounds (mirrors smartdealProject / smartdealCodes of
// src/quant/smartdeal.ts, the oracle): the coefficient fit ce = w·pᵀ of the kept weight segments
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
  const emin = emax - LEVELS + 1, t0 = pow2(emin - 1);
  const rowBytes = <usize>S << 2, pBytes = <usize>S << 3, ctw = sums + ((<usize>(r * r)) << 3);
  let changed = 0;
  for (let i = 0; i < rows; i++) {
    const wi = w + <usize>i * rowBytes, ci = codes + ((<usize>i * <usize>r) << 2);
    for (let t = 0; t < r; t++) {
      const s = dot(wi, p + <usize>t * pBytes, S), a = Math.abs(s);
      const e = <i32>((reinterpret<u64>(a) + (<u64>1 << 51)) >> 52) - 1023;
      const j = min<i32>(LEVELS - 1, max<i32>(0, e - emin));
      const c = select<i32>((s < 0 ? 8 : 0) + LEVELS - j, 0, a >= t0);
      const at = ci + (<usize>t << 2);
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
