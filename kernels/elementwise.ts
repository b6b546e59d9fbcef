// Elementwise and per-channel kernels on float32 (mirrors src/backends/reference/elementwise.ts).
// Tensors are viewed as [outer, C, inner] with per-channel coefficients; each part handles the
// channels [c0, c1) over every outer row, so parts write disjoint elements.
// Float arguments arrive as f32 bit patterns in i32 (the thread pool passes i32 words only).

/** mean[c] and biased variance[c] over (outer, inner), two passes, f64 sums of f32x4 row partials. */
export function channelMoments(x: usize, outer: i32, C: i32, inner: i32, c0: i32, c1: i32, mean: usize, variance: usize): void {
  const count = <f64>outer * <f64>inner;
  for (let c = c0; c < c1; c++) {
    let s: f64 = 0;
    for (let o = 0; o < outer; o++) s += rowSum(x + ((<usize>(o * C + c) * inner) << 2), inner);
    const m = s / count;
    let q: f64 = 0;
    for (let o = 0; o < outer; o++) q += rowSquaredDeviations(x + ((<usize>(o * C + c) * inner) << 2), inner, <f32>m);
    store<f32>(mean + (<usize>c << 2), <f32>m);
    store<f32>(variance + (<usize>c << 2), <f32>(q / count));
  }
}

function rowSum(p: usize, n: i32): f64 {
  let i = 0;
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(p + (<usize>i << 2)));
    s = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  }
  for (; i < n; i++) s += <f64>load<f32>(p + (<usize>i << 2));
  return s;
}

function rowSquaredDeviations(p: usize, n: i32, m: f32): f64 {
  let i = 0;
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    const mv = f32x4.splat(m);
    for (; i + 4 <= n; i += 4) {
      const d = f32x4.sub(v128.load(p + (<usize>i << 2)), mv);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    s = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  }
  for (; i < n; i++) {
    const d = load<f32>(p + (<usize>i << 2)) - m;
    s += <f64>(d * d);
  }
  return s;
}

/** out = (x - m[c]) * b[c] + e[c] (+ u * a[c] when u != 0 is given: hasU). */
export function channelAffine(
  x: usize, out: usize, outer: i32, C: i32, inner: i32, c0: i32, c1: i32, m: usize, b: usize, e: usize, u: usize, a: usize, hasU: i32,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = c0; c < c1; c++) {
      const off = (<usize>(o * C + c) * inner) << 2;
      const mc = load<f32>(m + (<usize>c << 2)), bc = load<f32>(b + (<usize>c << 2)), ec = load<f32>(e + (<usize>c << 2));
      const ac: f32 = hasU ? load<f32>(a + (<usize>c << 2)) : 0;
      const xp = x + off, op = out + off, up = u + off;
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        const mv = f32x4.splat(mc), bv = f32x4.splat(bc), ev = f32x4.splat(ec), av = f32x4.splat(ac);
        for (; i + 4 <= inner; i += 4) {
          const k = <usize>i << 2;
          let r = f32x4.add(f32x4.mul(f32x4.sub(v128.load(xp + k), mv), bv), ev);
          if (hasU) r = f32x4.add(r, f32x4.mul(v128.load(up + k), av));
          v128.store(op + k, r);
        }
      }
      for (; i < inner; i++) {
        const k = <usize>i << 2;
        let r = (load<f32>(xp + k) - mc) * bc + ec;
        if (hasU) r += load<f32>(up + k) * ac;
        store<f32>(op + k, r);
      }
    }
  }
}

/** sumG[c] = sum of g, sumGXhat[c] = sum of g * (x - m[c]) * iv[c], over (outer, inner); f64 sums. */
export function channelGradSums(
  g: usize, x: usize, outer: i32, C: i32, inner: i32, c0: i32, c1: i32, m: usize, iv: usize, sumG: usize, sumGXhat: usize,
): void {
  for (let c = c0; c < c1; c++) {
    const mc = load<f32>(m + (<usize>c << 2));
    let s1: f64 = 0, s2: f64 = 0;
    for (let o = 0; o < outer; o++) {
      const off = (<usize>(o * C + c) * inner) << 2;
      const gp = g + off, xp = x + off;
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
        const mv = f32x4.splat(mc);
        for (; i + 4 <= inner; i += 4) {
          const k = <usize>i << 2;
          const gv = v128.load(gp + k);
          a1 = f32x4.add(a1, gv);
          a2 = f32x4.add(a2, f32x4.mul(gv, f32x4.sub(v128.load(xp + k), mv)));
        }
        s1 += <f64>f32x4.extract_lane(a1, 0) + <f64>f32x4.extract_lane(a1, 1) + <f64>f32x4.extract_lane(a1, 2) + <f64>f32x4.extract_lane(a1, 3);
        s2 += <f64>f32x4.extract_lane(a2, 0) + <f64>f32x4.extract_lane(a2, 1) + <f64>f32x4.extract_lane(a2, 2) + <f64>f32x4.extract_lane(a2, 3);
      }
      for (; i < inner; i++) {
        const k = <usize>i << 2;
        const gi = load<f32>(gp + k);
        s1 += <f64>gi;
        s2 += <f64>(gi * (load<f32>(xp + k) - mc));
      }
    }
    store<f32>(sumG + (<usize>c << 2), <f32>s1);
    store<f32>(sumGXhat + (<usize>c << 2), <f32>(s2 * <f64>load<f32>(iv + (<usize>c << 2))));
  }
}

/** y = x > 0 ? x : x * slope (0 when slope is 0) over n elements; mask (u8) = x > 0 when hasMask. */
export function reluMask(x: usize, y: usize, mask: usize, n: i32, slopeBits: i32, hasMask: i32): void {
  const slope = reinterpret<f32>(slopeBits);
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    // 16 elements per step so that the 16 mask bytes are one store.
    const z = f32x4.splat(0), sv = f32x4.splat(slope), one = i32x4.splat(1);
    for (; i + 16 <= n; i += 16) {
      const k = <usize>i << 2;
      const v0 = v128.load(x + k), v1 = v128.load(x + k + 16), v2 = v128.load(x + k + 32), v3 = v128.load(x + k + 48);
      const p0 = f32x4.gt(v0, z), p1 = f32x4.gt(v1, z), p2 = f32x4.gt(v2, z), p3 = f32x4.gt(v3, z);
      v128.store(y + k, reluLanes(v0, p0, sv, slope));
      v128.store(y + k + 16, reluLanes(v1, p1, sv, slope));
      v128.store(y + k + 32, reluLanes(v2, p2, sv, slope));
      v128.store(y + k + 48, reluLanes(v3, p3, sv, slope));
      if (hasMask) {
        const lo = i16x8.narrow_i32x4_u(v128.and(p0, one), v128.and(p1, one));
        const hi = i16x8.narrow_i32x4_u(v128.and(p2, one), v128.and(p3, one));
        v128.store(mask + <usize>i, i8x16.narrow_i16x8_u(lo, hi));
      }
    }
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const pass = v > 0;
    store<f32>(y + (<usize>i << 2), pass ? v : slope == 0 ? 0 : v * slope);
    if (hasMask) store<u8>(mask + <usize>i, <u8>pass);
  }
}

/** Lanes of v where pass, else v * slope (zeros when slope is 0: -Infinity * 0 would be NaN). */
// @ts-ignore: decorator
@inline function reluLanes(v: v128, pass: v128, sv: v128, slope: f32): v128 {
  return slope == 0 ? v128.and(v, pass) : v128.bitselect(v, f32x4.mul(v, sv), pass);
}

/** out = mask ? g : g * scaleOff over n elements (mask u8). */
export function maskMul(g: usize, mask: usize, out: usize, n: i32, scaleOffBits: i32): void {
  const scaleOff = reinterpret<f32>(scaleOffBits);
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const sv = f32x4.splat(scaleOff), z = i32x4.splat(0);
    for (; i + 16 <= n; i += 16) {
      const k = <usize>i << 2;
      const m8 = v128.load(mask + <usize>i);
      const lo = i16x8.extend_low_i8x16_u(m8), hi = i16x8.extend_high_i8x16_u(m8);
      const m0 = i32x4.ne(i32x4.extend_low_i16x8_u(lo), z), m1 = i32x4.ne(i32x4.extend_high_i16x8_u(lo), z);
      const m2 = i32x4.ne(i32x4.extend_low_i16x8_u(hi), z), m3 = i32x4.ne(i32x4.extend_high_i16x8_u(hi), z);
      const g0 = v128.load(g + k), g1 = v128.load(g + k + 16), g2 = v128.load(g + k + 32), g3 = v128.load(g + k + 48);
      v128.store(out + k, v128.bitselect(g0, f32x4.mul(g0, sv), m0));
      v128.store(out + k + 16, v128.bitselect(g1, f32x4.mul(g1, sv), m1));
      v128.store(out + k + 32, v128.bitselect(g2, f32x4.mul(g2, sv), m2));
      v128.store(out + k + 48, v128.bitselect(g3, f32x4.mul(g3, sv), m3));
    }
  }
  for (; i < n; i++) {
    const v = load<f32>(g + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), load<u8>(mask + <usize>i) ? v : v * scaleOff);
  }
}

/** out[i] = a[i] op b[i % m] for i in [lo, hi); op: 0 add, 1 sub, 2 mul, 3 div. */
export function binary(op: i32, a: usize, b: usize, out: usize, lo: i32, hi: i32, m: i32): void {
  let i = lo, j = lo % m;
  while (i < hi) {
    const end = min(hi, i + (m - j));
    binaryRun(op, a + (<usize>i << 2), b + (<usize>j << 2), out + (<usize>i << 2), end - i);
    i = end;
    j = 0;
  }
}

// @ts-ignore: decorator
@inline function applyOp(op: i32, x: f32, y: f32): f32 {
  return op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
}

/** One contiguous run: out[k] = a[k] op b[k] for k < n. */
function binaryRun(op: i32, a: usize, b: usize, out: usize, n: i32): void {
  let k = 0;
  if (ASC_FEATURE_SIMD) {
    for (; k + 4 <= n; k += 4) {
      const o = <usize>k << 2;
      const x = v128.load(a + o), y = v128.load(b + o);
      v128.store(out + o, op == 0 ? f32x4.add(x, y) : op == 1 ? f32x4.sub(x, y) : op == 2 ? f32x4.mul(x, y) : f32x4.div(x, y));
    }
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    store<f32>(out + o, applyOp(op, load<f32>(a + o), load<f32>(b + o)));
  }
}

/**
 * SGD on n elements (see src/backends/reference/optim.ts): d = g + wd*w; with momentum mu > 0,
 * buf = first ? d : mu*buf + d and the step is nesterov ? d + mu*buf : buf; w -= lr * step.
 */
export function sgdUpdate(w: usize, g: usize, buf: usize, n: i32, lrBits: i32, muBits: i32, wdBits: i32, flags: i32): void {
  const lr = reinterpret<f32>(lrBits), mu = reinterpret<f32>(muBits), wd = reinterpret<f32>(wdBits);
  const nesterov = (flags & 1) != 0, first = (flags & 2) != 0;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const wi = load<f32>(w + o);
    const d = load<f32>(g + o) + wd * wi;
    if (mu == 0) {
      store<f32>(w + o, wi - lr * d);
      continue;
    }
    const b = first ? d : mu * load<f32>(buf + o) + d;
    store<f32>(buf + o, b);
    store<f32>(w + o, wi - lr * (nesterov ? d + mu * b : b));
  }
}

/**
 * Adam/AdamW on n elements (see src/backends/reference/optim.ts): gradient g (+ wd*w unless
 * decoupled, flags & 1; decoupled decay w -= lrWd*w first), moments m, v, then
 * w -= stepSize * m / (sqrt(v) * invC2 + eps).
 */
export function adamUpdate(
  w: usize, g: usize, m: usize, v: usize, n: i32, b1Bits: i32, b2Bits: i32, epsBits: i32, stepSizeBits: i32, invC2Bits: i32, wdBits: i32, lrWdBits: i32, flags: i32,
): void {
  const b1 = reinterpret<f32>(b1Bits), b2 = reinterpret<f32>(b2Bits), eps = reinterpret<f32>(epsBits);
  const stepSize = reinterpret<f32>(stepSizeBits), invC2 = reinterpret<f32>(invC2Bits), wd = reinterpret<f32>(wdBits), lrWd = reinterpret<f32>(lrWdBits);
  const decoupled = (flags & 1) != 0;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    let wi = load<f32>(w + o);
    let gi = load<f32>(g + o);
    if (decoupled) {
      if (lrWd != 0) wi -= lrWd * wi;
    } else if (wd != 0) gi += wd * wi;
    const mi = b1 * load<f32>(m + o) + (1 - b1) * gi;
    const vi = b2 * load<f32>(v + o) + (1 - b2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(w + o, wi - (stepSize * mi) / (sqrt<f32>(vi) * invC2 + eps));
  }
}

/** Every element of dst (n float32 values) set to value (bound by the positional convention). */
export function fill(dst: usize, n: i32, value: f32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const v = f32x4.splat(value);
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v);
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), value);
}
