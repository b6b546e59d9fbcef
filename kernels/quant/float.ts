// Float conv and dense stages of the deploy runtime (src/quant/packed.ts; reference: floatConv in
// src/quant/kernels.ts): weights cached in the arena once per weight array (src/backends/wasm/
// quant.ts), im2col in wasm, f32 GEMM, epilogue y = f32(f32(acc·mul) + bias), ReLU and max-pool,
// written float NCHW. Pointers are byte offsets into the imported arena memory.

import { f32Gemm } from "./index";
import { madd } from "../madd";

// @ts-ignore: decorator
@inline function lane(v: v128, i: i32): v128 {
  return i == 0 ? v128.shuffle<f32>(v, v, 0, 0, 0, 0) : i == 1 ? v128.shuffle<f32>(v, v, 1, 1, 1, 1) : i == 2 ? v128.shuffle<f32>(v, v, 2, 2, 2, 2) : v128.shuffle<f32>(v, v, 3, 3, 3, 3);
}

/** max(v, 0) with NaN and −0 giving +0 (the runtime's ReLU: v > 0 ? v : 0). */
// @ts-ignore: decorator
@inline function relu4(v: v128): v128 {
  return f32x4.pmax(f32x4.splat(0), v);
}

// @ts-ignore: decorator
@inline function copyF32(dst: usize, src: usize, count: i32): void {
  let q = 0;
  for (; q + 4 <= count; q += 4) v128.store(dst + (<usize>q << 2), v128.load(src + (<usize>q << 2)));
  for (; q < count; q++) store<f32>(dst + (<usize>q << 2), load<f32>(src + (<usize>q << 2)));
}

// @ts-ignore: decorator
@inline function zeroF32(dst: usize, count: i32): void {
  let q = 0;
  for (; q + 4 <= count; q += 4) v128.store(dst + (<usize>q << 2), i32x4.splat(0));
  for (; q < count; q++) store<f32>(dst + (<usize>q << 2), 0);
}

/**
 * im2col of image b of NCHW x [n, c, h, w] into cols [K, p8] (K = c·k·k rows in (c, i, j) order,
 * one output pixel per column, p8 = oh·ow rounded up to 8; zeros outside the image and in the
 * padding columns). Stride 1 copies each output row's inside span 4 floats at a time (rows are
 * short: memory.copy/fill calls cost more than the copy).
 */
function im2colF32(x: usize, cols: usize, b: i32, c: i32, h: i32, w: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, p8: i32): void {
  const p = oh * ow, rowBytes = <usize>p8 << 2;
  let dst = cols;
  for (let ch = 0; ch < c; ch++) {
    const plane = x + (<usize>((b * c + ch) * h * w) << 2);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++, dst += rowBytes) {
        // Output columns xo with 0 <= xo·stride − pad + j < w: [x0, x1).
        const lo = pad - j, x0 = lo <= 0 ? 0 : (lo + stride - 1) / stride;
        const hi = w + pad - j, x1 = hi <= 0 ? 0 : min(ow, (hi + stride - 1) / stride);
        for (let y = 0; y < oh; y++) {
          const yy = y * stride - pad + i, d = dst + (<usize>(y * ow) << 2);
          if (yy < 0 || yy >= h || x1 <= x0) {
            zeroF32(d, ow);
            continue;
          }
          zeroF32(d, x0);
          const src = plane + (<usize>(yy * w + x0 * stride - pad + j) << 2);
          if (stride == 1) copyF32(d + (<usize>x0 << 2), src, x1 - x0);
          else for (let xo = x0; xo < x1; xo++) store<f32>(d + (<usize>xo << 2), load<f32>(src + (<usize>((xo - x0) * stride) << 2)));
          zeroF32(d + (<usize>x1 << 2), ow - x1);
        }
        zeroF32(dst + (<usize>p << 2), p8 - p);
      }
    }
  }
}

/**
 * acc [o4, p8] = wt [K, o4]ᵀ · cols [K, p8]: tiles of 4 channels x 8 pixels, one f32x4 weight
 * load per tap broadcast to each channel (o4 and p8 multiples of 4 and 8; zero padding computes zeros).
 */
function gemmF32(wt: usize, cols: usize, acc: usize, K: i32, o4: i32, p8: i32): void {
  const wStep = <usize>o4 << 2, cStep = <usize>p8 << 2;
  for (let oc = 0; oc < o4; oc += 4) {
    for (let q = 0; q < p8; q += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let wp = wt + (<usize>oc << 2), cp = cols + (<usize>q << 2);
      for (let t = 0; t < K; t++, wp += wStep, cp += cStep) {
        const wv = v128.load(wp), x0 = v128.load(cp), x1 = v128.load(cp, 16);
        let s = lane(wv, 0);
        a00 = madd(s, x0, a00); a01 = madd(s, x1, a01);
        s = lane(wv, 1);
        a10 = madd(s, x0, a10); a11 = madd(s, x1, a11);
        s = lane(wv, 2);
        a20 = madd(s, x0, a20); a21 = madd(s, x1, a21);
        s = lane(wv, 3);
        a30 = madd(s, x0, a30); a31 = madd(s, x1, a31);
      }
      const o = acc + ((<usize>oc * <usize>p8 + <usize>q) << 2);
      v128.store(o, a00); v128.store(o, a01, 16);
      v128.store(o + cStep, a10); v128.store(o + cStep, a11, 16);
      v128.store(o + 2 * cStep, a20); v128.store(o + 2 * cStep, a21, 16);
      v128.store(o + 3 * cStep, a30); v128.store(o + 3 * cStep, a31, 16);
    }
  }
}

/**
 * Epilogue of `count` channels of accumulator rows acc [*, p8] into NCHW planes out (plane stride
 * `planeOut` floats): y = acc·mul + bias (mul = 0: y = acc), ReLU, then a pool x pool max-pool
 * (stride = window; 2 x 2: f32.max of each row pair, then the larger; else the first value and
 * every larger one, as maxPoolPlanes). The rows are rewritten in place before pooling.
 */
function epilogueF32(acc: usize, mul: usize, bias: usize, out: usize, o: i32, oh: i32, ow: i32, p8: i32, relu: i32, pool: i32): void {
  const p = oh * ow;
  for (let ch = 0; ch < o; ch++) {
    const row = acc + (<usize>(ch * p8) << 2);
    const dst = pool ? row : out + (<usize>(ch * p) << 2);
    const m = mul ? load<f32>(mul + (<usize>ch << 2)) : <f32>1, t = mul ? load<f32>(bias + (<usize>ch << 2)) : <f32>0;
    const mv = f32x4.splat(m), tv = f32x4.splat(t);
    let q = 0;
    for (; q + 4 <= p; q += 4) {
      let v = v128.load(row + (<usize>q << 2));
      if (mul) v = f32x4.add(f32x4.mul(v, mv), tv);
      if (relu) v = relu4(v);
      v128.store(dst + (<usize>q << 2), v);
    }
    for (; q < p; q++) {
      let v = load<f32>(row + (<usize>q << 2));
      if (mul) v = v * m + t;
      if (relu) v = v > 0 ? v : 0;
      store<f32>(dst + (<usize>q << 2), v);
    }
    if (!pool) continue;
    const ph = oh / pool, pw = ow / pool, po = out + (<usize>(ch * ph * pw) << 2);
    for (let y = 0; y < ph; y++) {
      for (let xo = 0; xo < pw; xo++) {
        const base = row + (<usize>(y * pool * ow + xo * pool) << 2);
        let r: f32;
        if (pool == 2) {
          const a = max<f32>(load<f32>(base), load<f32>(base, 4)), b = max<f32>(load<f32>(base + (<usize>ow << 2)), load<f32>(base + (<usize>ow << 2), 4));
          r = a > b ? a : b;
        } else {
          r = load<f32>(base);
          for (let i = 0; i < pool; i++) {
            for (let j = 0; j < pool; j++) {
              const v = load<f32>(base + (<usize>(i * ow + j) << 2));
              if (v > r) r = v;
            }
          }
        }
        store<f32>(po + (<usize>(y * pw + xo) << 2), r);
      }
    }
  }
}

/**
 * Sign packing of accumulator rows acc [o, p8] (raw sums of one image) into packed NHWC words
 * out [p, cw] (zeroed here): channel ch is −1 (bit 1) unless (dir > 0 ? v ≥ thr : dir < 0 ?
 * v ≤ thr : thr ≥ 0), the compare of packSigns with float thresholds (NaN: −1 for dir ≠ 0).
 */
function signsF32(acc: usize, thr: usize, dir: usize, out: usize, o: i32, p: i32, p8: i32): void {
  const cw = (o + 31) >>> 5, wordStep = <usize>cw << 2;
  for (let t: usize = 0; t < <usize>(p * cw); t++) store<u32>(out + (t << 2), 0);
  for (let ch = 0; ch < o; ch++) {
    const row = acc + (<usize>(ch * p8) << 2), th = load<f32>(thr + (<usize>ch << 2)), d = load<i8>(dir + <usize>ch);
    const bit: u32 = (<u32>1) << (ch & 31), bits = i32x4.splat(bit), thv = f32x4.splat(th);
    let dst = out + (<usize>(ch >>> 5) << 2);
    if (d == 0) {
      if (th >= 0) continue;
      for (let q = 0; q < p; q++, dst += wordStep) store<u32>(dst, load<u32>(dst) | bit);
      continue;
    }
    let q = 0;
    if (cw == 1) {
      // One word per pixel: four pixels' words per vector.
      for (; q + 4 <= p; q += 4, dst += 16) {
        const v = v128.load(row + (<usize>q << 2));
        const minus = v128.not(d > 0 ? f32x4.ge(v, thv) : f32x4.le(v, thv));
        v128.store(dst, v128.or(v128.load(dst), v128.and(minus, bits)));
      }
    }
    for (; q < p; q++, dst += wordStep) {
      const v = load<f32>(row + (<usize>q << 2));
      if (!(d > 0 ? v >= th : v <= th)) store<u32>(dst, load<u32>(dst) | bit);
    }
  }
}

/**
 * A float conv stage: x float NCHW [n, c, h, w]; wt cached weights [K, o4] (K = c·k·k, OIHW
 * order transposed, channels padded with zeros to o4 = ⌈o/4⌉·4); cols scratch [K, p8], acc
 * scratch [o4, p8] (p8 = ⌈oh·ow/8⌉·8); out float NCHW [n, o, oh, ow] (pool > 0: max-pooled,
 * [n, o, ⌊oh/pool⌋, ⌊ow/pool⌋]). mul = 0: raw sums (no epilogue). thr ≠ 0: the raw sums' signs
 * under float thresholds thr [o] / directions dir [o] (int8) packed as [n, oh, ow, ⌈o/32⌉] words instead.
 */
export function floatConvF32(
  x: usize, wt: usize, mul: usize, bias: usize, thr: usize, dir: usize, cols: usize, acc: usize, out: usize,
  n: i32, c: i32, h: i32, w: i32, o: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, relu: i32, pool: i32,
): void {
  const K = c * k * k, o4 = (o + 3) & ~3, p = oh * ow, p8 = (p + 7) & ~7;
  const image = thr ? <usize>(p * ((o + 31) >>> 5)) << 2 : <usize>(o * (pool ? (oh / pool) * (ow / pool) : p)) << 2;
  for (let b = 0; b < n; b++) {
    im2colF32(x, cols, b, c, h, w, k, stride, pad, oh, ow, p8);
    gemmF32(wt, cols, acc, K, o4, p8);
    if (thr) signsF32(acc, thr, dir, out + <usize>b * image, o, p, p8);
    else epilogueF32(acc, mul, bias, out + <usize>b * image, o, oh, ow, p8, relu, pool);
  }
}

/**
 * A float dense stage: x [n, kr] rows and wr [o, kr] cached weight rows, both zero-padded to kr
 * floats (a multiple of 4); out [n, o] = x·wrᵀ (f32Gemm) with the epilogue of floatConvF32 (no pooling).
 */
export function floatDenseF32(x: usize, wr: usize, mul: usize, bias: usize, out: usize, n: i32, o: i32, kr: i32, relu: i32): void {
  f32Gemm(x, wr, out, n, o, kr);
  if (!mul && !relu) return;
  for (let i = 0; i < n; i++) {
    const row = out + (<usize>(i * o) << 2);
    let j = 0;
    for (; j + 4 <= o; j += 4) {
      let v = v128.load(row + (<usize>j << 2));
      if (mul) v = f32x4.add(f32x4.mul(v, v128.load(mul + (<usize>j << 2))), v128.load(bias + (<usize>j << 2)));
      if (relu) v = relu4(v);
      v128.store(row + (<usize>j << 2), v);
    }
    for (; j < o; j++) {
      let v = load<f32>(row + (<usize>j << 2));
      if (mul) v = v * load<f32>(mul + (<usize>j << 2)) + load<f32>(bias + (<usize>j << 2));
      if (relu) v = v > 0 ? v : 0;
      store<f32>(row + (<usize>j << 2), v);
    }
  }
}
