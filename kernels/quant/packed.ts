// Packed-activation kernels of the deploy runtime (src/quant/packed.ts): activations stay sign
// packed (bit 1 = −1, NHWC, cw = ceil(C/32) u32 words per pixel, padding bits 0) from one binary
// layer to the next. Pointers are byte offsets into the imported arena memory.

import { int8Gemm } from "./index";
import { hsum4 } from "./simd";


// @ts-ignore: decorator
@inline function copyWords(dst: usize, src: usize, words: i32): void {
  for (let t = 0; t < words; t++) store<u32>(dst + (<usize>t << 2), load<u32>(src + (<usize>t << 2)));
}

// @ts-ignore: decorator
@inline function zeroWords(dst: usize, words: i32): void {
  for (let t = 0; t < words; t++) store<u32>(dst + (<usize>t << 2), 0);
}

/**
 * Binary conv of packed NHWC input x [n, h, w, cw] as packed im2col + binary GEMM: every output
 * pixel gets a row of its k·k taps (in (i, j) order, zero outside the image) in cols [pixels, rw]:
 * for c > 16, cw = ceil(c/32) words per tap; for c ≤ 16 (c ≤ 8), two (four) taps share a word in
 * 16-bit (8-bit) slots, so fewer words meet the popcounts; rows zero padded to rw words, a
 * multiple of 2. Times the weight rows wr (packed OHWI in the same layout, in channel quads
 * [⌈o/4⌉, rw/2, 4] u64) by binaryGemmQuads into acc [pixels, o] (c·k·k − 2·popcount); inputs of few channels (directPitch)
 * skip the rows (directGemm, or tableGemm when tab ≠ 0: the weights as byte tables). Padding bits are 0 in both operands (no
 * contribution); a tap outside the image XORs zero bits with the weights, so its popcount (from
 * sat [(k+1)², ⌈o/4⌉·4], the summed-area table of the taps' weight popcounts: sat[i, j, ch] = Σ over
 * taps i' < i, j' < j) is subtracted: acc = c·(inside taps) − 2·popcount over inside taps,
 * exactly the zero-padded conv, left in acc. sgn = 0 and mul = 0: done (int32 [pixels, o]);
 * sgn ≠ 0: packed signs out [pixels, ceil(o/32)], channel ch −1 (bit 1) iff acc·sgn[ch] − tq[ch] < 0
 * (sgn, tq: int32 [⌈o/4⌉·4], the thresholds folded by the caller); mul ≠ 0: float NCHW out
 * [n, o, oh, ow] = f32(acc·mul[ch] + bias[ch]) (in float64), added in float32 to the values already
 * in out when `residual` ≠ 0 (a residual sum), and with signs ≠ 0 those values' plain signs (−1 iff
 * not v ≥ 0) packed NHWC into signs [n, oh, ow, ⌈o/32⌉] (the next binary layer's input).
 */
export function binaryConvGemm(
  x: usize, wr: usize, sat: usize, tab: usize, sgn: usize, tq: usize, mul: usize, bias: usize, cols: usize, acc: usize, out: usize, signs: usize,
  n: i32, h: i32, w: i32, c: i32, o: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, residual: i32,
): void {
  const cw = (c + 31) >>> 5, kk = k * k, slot = c <= 8 ? 8 : c <= 16 ? 16 : 0, tapsPerWord = slot ? 32 / slot : 0;
  const usedWords = slot ? (kk + tapsPerWord - 1) / tapsPerWord : kk * cw, rw = (usedWords + 1) & ~1, last = tapsPerWord - 1;
  const rowBytes = <usize>rw << 2, pixels = n * oh * ow;
  const tapBytes = <usize>cw << 2, spanBytes = <usize>(k * cw) << 2, used = <usize>usedWords << 2;
  // Spans are a few words: word loops (memory.copy/fill calls cost more than the copy here).
  const spanWords = k * cw, kkc = kk * c, pitch = directPitch(c, k);
  let dst = cols;
  // acc = c·k·k − 2·popcount over all taps: the whole conv for pixels with every tap inside.
  if (pitch) {
    if (tab) {
      // After the image (n·(h + 2·pad)·(w + 2·pad)·pitch u16, to a 16-byte boundary): the u8 sums [pixels, ⌈o/16⌉] v128, then 64 bytes of scratch.
      offsetImage(x, cols, n, h, w, pad, pitch);
      const sums = cols + ((<usize>(n * (h + 2 * pad) * (w + 2 * pad) * pitch * 2) + 15) & ~15);
      tableGemm(cols, tab, sums, acc, sums + (<usize>(pixels * ((o + 15) >> 4)) << 4), sgn, tq, out, n, h, w, o, k, stride, pad, oh, ow, pitch, kkc);
    } else {
      borderedImage(x, cols, n, h, w, pad, pitch);
      directGemm(cols, wr, acc, n, h, w, o, k, stride, pad, oh, ow, pitch, kkc);
    }
  }
  else for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * stride - pad, i0 = max(0, -y0), i1 = min(k, h - y0);
      for (let xo = 0; xo < ow; xo++, dst += rowBytes) {
        const x0 = xo * stride - pad, j0 = max(0, -x0), j1 = min(k, w - x0);
        if (slot && i0 == 0 && i1 == k && j0 == 0 && j1 == k) {
          // Interior: every tap inside; slots filled in order, each word built in a register.
          let word: u32 = 0, t = 0, d = dst;
          for (let i = 0; i < k; i++) {
            const src = x + (<usize>((b * h + y0 + i) * w + x0) << 2);
            for (let j = 0; j < k; j++, t++) {
              word |= load<u32>(src + (<usize>j << 2)) << (<u32>((t & last) * slot));
              if ((t & last) == last) {
                store<u32>(d, word);
                d += 4;
                word = 0;
              }
            }
          }
          if (kk & last) store<u32>(d, word);
        } else if (slot) {
          // Taps packed into slots, each word built in a register; zero outside the image.
          let word: u32 = 0, t = 0, d = dst;
          for (let i = 0; i < k; i++) {
            const inRow = i >= i0 && i < i1, src = x + (<usize>((b * h + y0 + i) * w + x0) << 2);
            for (let j = 0; j < k; j++, t++) {
              if (inRow && j >= j0 && j < j1) word |= load<u32>(src + (<usize>j << 2)) << (<u32>((t & last) * slot));
              if ((t & last) == last) {
                store<u32>(d, word);
                d += 4;
                word = 0;
              }
            }
          }
          if (kk & last) store<u32>(d, word);
        } else if (i0 == 0 && i1 == k && x0 >= 0 && x0 + k <= w) {
          for (let i = 0; i < k; i++) copyWords(dst + <usize>i * spanBytes, x + (<usize>((b * h + y0 + i) * w + x0) * tapBytes), spanWords);
        } else {
          zeroWords(dst, usedWords);
          for (let i = i0; i < i1; i++) {
            if (j1 > j0) copyWords(dst + <usize>(i * k + j0) * tapBytes, x + (<usize>((b * h + y0 + i) * w + x0 + j0) * tapBytes), (j1 - j0) * cw);
          }
        }
        zeroWords(dst + used, rw - usedWords);
      }
    }
  }
  const o4 = o & ~3, o4r = (o + 3) & ~3, ow32 = (o + 31) >>> 5, k1 = k + 1;
  if (!pitch) binaryGemmQuads(cols, wr, acc, pixels, o, rw >> 1, kkc);
  let row = acc, dstWords = out;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * stride - pad, i0 = max(0, -y0), i1 = min(k, h - y0);
      for (let xo = 0; xo < ow; xo++, row += <usize>o << 2, dstWords += <usize>ow32 << 2) {
        const x0 = xo * stride - pad, j0 = max(0, -x0), j1 = min(k, w - x0);
        const inside = max(0, i1 - i0) * max(0, j1 - j0);
        // tableGemm packed the signs of the pixels with every tap inside.
        if (tab && sgn && inside == kk) continue;
        if (inside != kk) {
          // acc = c·k·k − 2·popcount over all taps; − c·(outside taps) + 2·popcount of the weights of the outside taps:
          // all taps' popcounts minus the inside rectangle's, from the summed-area table (an empty rectangle: 0).
          const ie = max(i1, i0), je = max(j1, j0);
          const base = i32x4.splat(inside * c - kkc);
          const sAll = sat + (<usize>((k * k1 + k) * o4r) << 2), s11 = sat + (<usize>((ie * k1 + je) * o4r) << 2);
          const s01 = sat + (<usize>((i0 * k1 + je) * o4r) << 2), s10 = sat + (<usize>((ie * k1 + j0) * o4r) << 2), s00 = sat + (<usize>((i0 * k1 + j0) * o4r) << 2);
          let ch = 0;
          for (; ch < o4; ch += 4) {
            const cb = <usize>ch << 2;
            const inPop = i32x4.add(i32x4.sub(v128.load(s11 + cb), i32x4.add(v128.load(s01 + cb), v128.load(s10 + cb))), v128.load(s00 + cb));
            v128.store(row + cb, i32x4.add(i32x4.add(v128.load(row + cb), base), i32x4.shl(i32x4.sub(v128.load(sAll + cb), inPop), 1)));
          }
          for (; ch < o; ch++) {
            const cb = <usize>ch << 2, inPop = load<i32>(s11 + cb) - load<i32>(s01 + cb) - load<i32>(s10 + cb) + load<i32>(s00 + cb);
            store<i32>(row + cb, load<i32>(row + cb) + inside * c - kkc + 2 * (load<i32>(sAll + cb) - inPop));
          }
        }
        if (sgn == 0) continue;
        let word: u32 = 0, ch = 0;
        for (; ch < o4; ch += 4) {
          const m = i32x4.sub(i32x4.mul(v128.load(row + (<usize>ch << 2)), v128.load(sgn + (<usize>ch << 2))), v128.load(tq + (<usize>ch << 2)));
          word |= (<u32>i32x4.bitmask(m)) << (ch & 31);
          if (((ch + 4) & 31) == 0) {
            store<u32>(dstWords + (<usize>(ch >>> 5) << 2), word);
            word = 0;
          }
        }
        for (; ch < o; ch++) {
          if (load<i32>(row + (<usize>ch << 2)) * load<i32>(sgn + (<usize>ch << 2)) - load<i32>(tq + (<usize>ch << 2)) < 0) word |= (<u32>1) << (ch & 31);
        }
        if (o & 31) store<u32>(dstWords + (<usize>((o - 1) >>> 5) << 2), word);
      }
    }
  }
  if (mul) floatEpilogueNCHW(acc, mul, bias, out, signs, n, o, oh * ow, residual);
}

/**
 * acc [m, o] = k − 2·popcount(row i of a XOR channel j's weights) for rows a [m, words64] u64 and
 * weights in channel quads wq [⌈o/4⌉, words64, 4] u64 (word t of channels 4q..4q + 3 side by side,
 * zero past o): tiles of 2 rows x 4 channels read a quad's 4 words at one address (immediate
 * offsets), which leaves the 8 accumulators in registers.
 */
function binaryGemmQuads(a: usize, wq: usize, acc: usize, m: i32, o: i32, words64: i32, k: i32): void {
  const row = <usize>words64 << 3, quad = row << 2;
  let i = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = a + <usize>i * row, a1 = a0 + row, o0 = acc + (<usize>(i * o) << 2), o1 = o0 + (<usize>o << 2);
    let q = wq;
    for (let j = 0; j < o; j += 4, q += quad) {
      let s00: i64 = 0, s01: i64 = 0, s02: i64 = 0, s03: i64 = 0;
      let s10: i64 = 0, s11: i64 = 0, s12: i64 = 0, s13: i64 = 0;
      // Pointer steps (words64 ≥ 1), each weight word loaded where it is used (measured ~10 % faster than loading the quad first).
      let y = q, x = a0;
      do {
        const x0 = load<i64>(x), x1 = load<i64>(x + row);
        s00 += popcnt<i64>(x0 ^ load<i64>(y)); s10 += popcnt<i64>(x1 ^ load<i64>(y));
        s01 += popcnt<i64>(x0 ^ load<i64>(y, 8)); s11 += popcnt<i64>(x1 ^ load<i64>(y, 8));
        s02 += popcnt<i64>(x0 ^ load<i64>(y, 16)); s12 += popcnt<i64>(x1 ^ load<i64>(y, 16));
        s03 += popcnt<i64>(x0 ^ load<i64>(y, 24)); s13 += popcnt<i64>(x1 ^ load<i64>(y, 24));
        x += 8;
        y += 32;
      } while (x < a1);
      const d0 = o0 + (<usize>j << 2), d1 = o1 + (<usize>j << 2);
      if (j + 4 <= o) {
        store<i32>(d0, k - 2 * <i32>s00); store<i32>(d0, k - 2 * <i32>s01, 4); store<i32>(d0, k - 2 * <i32>s02, 8); store<i32>(d0, k - 2 * <i32>s03, 12);
        store<i32>(d1, k - 2 * <i32>s10); store<i32>(d1, k - 2 * <i32>s11, 4); store<i32>(d1, k - 2 * <i32>s12, 8); store<i32>(d1, k - 2 * <i32>s13, 12);
      } else {
        const r = o - j;
        store<i32>(d0, k - 2 * <i32>s00); store<i32>(d1, k - 2 * <i32>s10);
        if (r > 1) { store<i32>(d0, k - 2 * <i32>s01, 4); store<i32>(d1, k - 2 * <i32>s11, 4); }
        if (r > 2) { store<i32>(d0, k - 2 * <i32>s02, 8); store<i32>(d1, k - 2 * <i32>s12, 8); }
      }
    }
  }
  if (i < m) {
    const a0 = a + <usize>i * row, o0 = acc + (<usize>(i * o) << 2);
    let q = wq;
    for (let j = 0; j < o; j += 4, q += quad) {
      let s0: i64 = 0, s1: i64 = 0, s2: i64 = 0, s3: i64 = 0;
      let y = q, x = a0;
      const end = a0 + row;
      do {
        const x0 = load<i64>(x);
        s0 += popcnt<i64>(x0 ^ load<i64>(y)); s1 += popcnt<i64>(x0 ^ load<i64>(y, 8)); s2 += popcnt<i64>(x0 ^ load<i64>(y, 16)); s3 += popcnt<i64>(x0 ^ load<i64>(y, 24));
        x += 8;
        y += 32;
      } while (x < end);
      const d0 = o0 + (<usize>j << 2), r = o - j;
      store<i32>(d0, k - 2 * <i32>s0);
      if (r > 1) store<i32>(d0, k - 2 * <i32>s1, 4);
      if (r > 2) store<i32>(d0, k - 2 * <i32>s2, 8);
      if (r > 3) store<i32>(d0, k - 2 * <i32>s3, 12);
    }
  }
}

/**
 * Bytes per pixel of directGemm's image for c channels and k x k kernels (a kernel row's k taps
 * fit one i64: c ≤ 8 and k ≤ 8, or c ≤ 16 and k ≤ 4), or 0 (im2col rows). The same rule as
 * `directPitch` in src/backends/wasm/quant.ts, which lays out the weights.
 */
// @ts-ignore: decorator
@inline function directPitch(c: i32, k: i32): i32 {
  return c <= 8 ? (k <= 8 ? 1 : 0) : c <= 16 && k <= 4 ? 2 : 0;
}

/** The popcount of (the k taps at a, masked) XOR a weight row, over the k kernel rows. */
// @ts-ignore: decorator
@inline function directDot1(a: usize, wrow: usize, k: i32, rowPitch: usize, mask: u64): i32 {
  let s: i64 = 0;
  for (let t = 0; t < k; t++) s += popcnt<i64>((load<u64>(a + <usize>t * rowPitch) & mask) ^ load<u64>(wrow + (<usize>t << 3)));
  return <i32>s;
}

/**
 * Copies packed x [n, h, w] (one word per pixel, c ≤ 16 bits used) into img as a zero-bordered
 * image [n, h + 2·pad, w + 2·pad] of `pitch`-byte pixels followed by 8 bytes of zeros (a kernel
 * row's taps are then one unaligned i64 load).
 */
function borderedImage(x: usize, img: usize, n: i32, h: i32, w: i32, pad: i32, pitch: i32): void {
  const H2 = h + 2 * pad, W2 = w + 2 * pad, ps = <usize>pitch;
  memory.fill(img, 0, <usize>(n * H2 * W2) * ps + 8);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const src = x + (<usize>((b * h + y) * w) << 2), dst = img + <usize>((b * H2 + y + pad) * W2 + pad) * ps;
      if (pitch == 2) for (let j = 0; j < w; j++) store<u16>(dst + (<usize>j << 1), load<u32>(src + (<usize>j << 2)));
      else for (let j = 0; j < w; j++) store<u8>(dst + <usize>j, load<u32>(src + (<usize>j << 2)));
    }
  }
}

/**
 * binaryConvGemm's GEMM without im2col rows for inputs of few channels (directPitch ≠ 0) on the
 * borderedImage img [n, h + 2·pad, w + 2·pad] of `pitch`-byte pixels: a kernel row's
 * k taps are the low k·8·pitch bits of one unaligned i64 load; the weight rows wr [o, k] i64 hold
 * kernel row i's taps in the same slots (tap j at bits 8·pitch·j). Outside taps read zero bits, as
 * im2col's zero words. acc [pixels, o] = kkc − 2·popcount, as binaryGemmScalar (2 pixels x 4
 * channels per tile).
 */
function directGemm(img: usize, wr: usize, acc: usize, n: i32, h: i32, w: i32, o: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, pitch: i32, kkc: i32): void {
  const H2 = h + 2 * pad, W2 = w + 2 * pad, ps = <usize>pitch;
  const bits = k * pitch * 8, mask: u64 = bits >= 64 ? <u64>-1 : (<u64>1 << <u64>bits) - 1;
  const rowPitch = <usize>W2 * ps, wrow = <usize>k << 3, pixels = n * oh * ow, imgStep = <usize>(H2 * W2) * ps;
  // Walk the output pixels in order, two at a time: (b, y, xo) and the image address of their first tap.
  let b = 0, y = 0, xo = 0, q = 0;
  let base = img;
  while (q < pixels) {
    const a0 = base + <usize>((y * stride) * W2 + xo * stride) * ps;
    if (++xo == ow) { xo = 0; if (++y == oh) { y = 0; b++; base += imgStep; } }
    const out0 = acc + (<usize>(q * o) << 2);
    if (q + 1 == pixels) {
      for (let j = 0; j < o; j++) store<i32>(out0 + (<usize>j << 2), kkc - 2 * directDot1(a0, wr + <usize>j * wrow, k, rowPitch, mask));
      break;
    }
    const a1 = base + <usize>((y * stride) * W2 + xo * stride) * ps;
    if (++xo == ow) { xo = 0; if (++y == oh) { y = 0; b++; base += imgStep; } }
    const out1 = out0 + (<usize>o << 2);
    let j = 0;
    for (; j + 4 <= o; j += 4) {
      const b0 = wr + <usize>j * wrow, b1 = b0 + wrow, b2 = b1 + wrow, b3 = b2 + wrow;
      let s00: i64 = 0, s01: i64 = 0, s02: i64 = 0, s03: i64 = 0;
      let s10: i64 = 0, s11: i64 = 0, s12: i64 = 0, s13: i64 = 0;
      for (let t = 0; t < k; t++) {
        const r = <usize>t * rowPitch, tt = <usize>t << 3;
        const x0 = load<u64>(a0 + r) & mask, x1 = load<u64>(a1 + r) & mask;
        const y0 = load<u64>(b0 + tt), y1 = load<u64>(b1 + tt), y2 = load<u64>(b2 + tt), y3 = load<u64>(b3 + tt);
        s00 += popcnt<i64>(x0 ^ y0); s01 += popcnt<i64>(x0 ^ y1); s02 += popcnt<i64>(x0 ^ y2); s03 += popcnt<i64>(x0 ^ y3);
        s10 += popcnt<i64>(x1 ^ y0); s11 += popcnt<i64>(x1 ^ y1); s12 += popcnt<i64>(x1 ^ y2); s13 += popcnt<i64>(x1 ^ y3);
      }
      const o0 = out0 + (<usize>j << 2), o1 = out1 + (<usize>j << 2);
      store<i32>(o0, kkc - 2 * <i32>s00); store<i32>(o0, kkc - 2 * <i32>s01, 4); store<i32>(o0, kkc - 2 * <i32>s02, 8); store<i32>(o0, kkc - 2 * <i32>s03, 12);
      store<i32>(o1, kkc - 2 * <i32>s10); store<i32>(o1, kkc - 2 * <i32>s11, 4); store<i32>(o1, kkc - 2 * <i32>s12, 8); store<i32>(o1, kkc - 2 * <i32>s13, 12);
    }
    for (; j < o; j++) {
      store<i32>(out0 + (<usize>j << 2), kkc - 2 * directDot1(a0, wr + <usize>j * wrow, k, rowPitch, mask));
      store<i32>(out1 + (<usize>j << 2), kkc - 2 * directDot1(a1, wr + <usize>j * wrow, k, rowPitch, mask));
    }
    q += 2;
  }
}

/**
 * Packed x [n, h, w] (one word per pixel, c ≤ 8·pitch bits used) as a zero-bordered image of table
 * offsets [n, h + 2·pad, w + 2·pad, pitch] u16: entry e of a pixel is 16 · (byte e of its word),
 * the offset of that byte's entry in a tableGemm table.
 */
function offsetImage(x: usize, img: usize, n: i32, h: i32, w: i32, pad: i32, pitch: i32): void {
  const H2 = h + 2 * pad, W2 = w + 2 * pad, ps = <usize>pitch << 1;
  memory.fill(img, 0, <usize>(n * H2 * W2) * ps);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const src = x + (<usize>((b * h + y) * w) << 2), dst = img + <usize>((b * H2 + y + pad) * W2 + pad) * ps;
      for (let j = 0; j < w; j++) {
        const v = load<u32>(src + (<usize>j << 2)), d = dst + <usize>j * ps;
        store<u16>(d, (v & 255) << 4);
        if (pitch == 2) store<u16>(d, ((v >>> 8) & 255) << 4, 2);
      }
    }
  }
}

/**
 * One pass of tableGemm over every output pixel for `count` (1..3) input bytes of the taps:
 * sums[pixel] (u8 lanes, `step` bytes apart) += t0[byte at f0] (+ t1[byte at f1] + t2[byte at f2]),
 * the bytes read as offsets from img at f0 / f1 / f2 past each pixel's first tap; the tables are
 * 4 KiB apart.
 */
// @ts-ignore: decorator
@inline function tableSweep(img: usize, t0: usize, f0: usize, f1: usize, f2: usize, count: i32, sums: usize, step: usize, n: i32, oh: i32, ow: i32, imgStep: usize, rowStep: usize, colStep: usize): void {
  let d = sums;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      let a = img + <usize>b * imgStep + <usize>y * rowStep;
      for (let xo = 0; xo < ow; xo++, a += colStep, d += step) {
        let v = i8x16.add(v128.load(d), v128.load(t0 + <usize>load<u16>(a + f0)));
        if (count > 1) v = i8x16.add(v, v128.load(t0 + 4096 + <usize>load<u16>(a + f1)));
        if (count > 2) v = i8x16.add(v, v128.load(t0 + 8192 + <usize>load<u16>(a + f2)));
        v128.store(d, v);
      }
    }
  }
}

/** Byte offset of tap byte p (kernel row p / kp, byte p % kp of that row's k·pitch) past a pixel's first tap in an offsetImage of row width W2. */
// @ts-ignore: decorator
@inline function tapByte(p: i32, kp: i32, W2: i32, pitch: i32): usize {
  return <usize>(((p / kp) * W2 * pitch + p % kp) << 1);
}

/**
 * directGemm's accumulators from byte tables (the weights folded in; needs k·k·c < 255, so a
 * pixel's popcounts fit u8 lanes): img is the offsetImage of x, so a pixel's taps are P = k·k·pitch
 * bytes (tap (i, j), byte e: at ((i·(w + 2·pad) + j)·pitch + e) entries past its first), and tab
 * [G, P, 256] v128 (G = ⌈o/16⌉) holds in lane l of entry (g, p, v) popcount(v XOR byte p of
 * output channel 16g + l's weight taps) (0 past o): one table load and one i8x16.add per input
 * byte give 16 channels' popcounts, the same counts as directGemm's XOR + popcount, outside taps
 * (zero bytes) included. The loops run byte position by byte position (three per pass) over every
 * pixel, so a pass reads three 4 KiB tables (cache resident) and the u8 sums [pixels, G] v128
 * (`sums`, scratch). Then acc [pixels, o] = kkc − 2·popcount; with thresholds (sgn ≠ 0: −1 iff
 * acc·sgn − tq < 0, binaryConvGemm's compare) a pixel with every tap inside gets its packed signs
 * in out [pixels, ⌈o/32⌉] instead, from two u8 compares per 16 channels (the compare on popcounts:
 * −1 iff pc > hi or pc < lo). tmp: 64 + 32·G bytes of scratch.
 */
function tableGemm(
  img: usize, tab: usize, sums: usize, acc: usize, tmp: usize, sgn: usize, tq: usize, out: usize,
  n: i32, h: i32, w: i32, o: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, pitch: i32, kkc: i32,
): void {
  const H2 = h + 2 * pad, W2 = w + 2 * pad, kp = k * pitch, P = k * kp, groups = (o + 15) >> 4, pixels = n * oh * ow, step = <usize>groups << 4;
  const imgStep = <usize>(H2 * W2 * pitch) << 1, rowStep = <usize>(stride * W2 * pitch) << 1, colStep = <usize>(stride * pitch) << 1;
  memory.fill(sums, 0, <usize>pixels * step);
  // Read the tables in order first (one word a 64-byte line): after other work evicted them, the
  // hardware prefetcher streams them in, where the sweeps' scattered reads would each wait for a miss.
  let touch: u32 = 0;
  for (let t: usize = 0, end = <usize>(groups * P) << 12; t < end; t += 64) touch |= load<u32>(tab + t);
  store<u32>(tmp, touch);
  for (let g = 0; g < groups; g++) {
    for (let p = 0; p < P; p += 3) {
      const t0 = tab + (<usize>(g * P + p) << 12), f0 = tapByte(p, kp, W2, pitch), f1 = tapByte(p + 1, kp, W2, pitch), f2 = tapByte(p + 2, kp, W2, pitch);
      const sg = sums + (<usize>g << 4), left = P - p;
      if (left >= 3) tableSweep(img, t0, f0, f1, f2, 3, sg, step, n, oh, ow, imgStep, rowStep, colStep);
      else if (left == 2) tableSweep(img, t0, f0, f1, f2, 2, sg, step, n, oh, ow, imgStep, rowStep, colStep);
      else tableSweep(img, t0, f0, f1, f2, 1, sg, step, n, oh, ow, imgStep, rowStep, colStep);
    }
  }
  // The compare on popcounts, per channel (u8 lanes at tmp + 64: hi of each group, then lo); padding channels never −1.
  const hiAt = tmp + 64, loAt = hiAt + step;
  if (sgn) {
    for (let ch = 0; ch < groups << 4; ch++) {
      let hi = 255, lo = 0;
      if (ch < o) {
        const d = load<i32>(sgn + (<usize>ch << 2)), t = <i64>load<i32>(tq + (<usize>ch << 2));
        if (d > 0) {
          // −1 iff kkc − 2pc < t: pc > ⌊(kkc − t) / 2⌋.
          const v = (<i64>kkc - t) >> 1;
          if (v < 0) lo = 255;
          else if (v < 255) hi = <i32>v;
        } else if (d < 0) {
          // −1 iff −(kkc − 2pc) < t: pc < ⌈(kkc + t) / 2⌉.
          const v = (<i64>kkc + t + 1) >> 1;
          lo = v >= 255 ? 255 : v <= 0 ? 0 : <i32>v;
        } else if (t > 0) lo = 255;
      }
      store<u8>(hiAt + <usize>ch, hi);
      store<u8>(loAt + <usize>ch, lo);
    }
  }
  const kv = i32x4.splat(kkc), ow32 = (o + 31) >>> 5;
  let src = sums, dst = acc, words = out;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * stride - pad, rowInside = y0 >= 0 && y0 + k <= h;
      for (let xo = 0; xo < ow; xo++, dst += <usize>o << 2, words += <usize>ow32 << 2) {
        const x0 = xo * stride - pad;
        if (sgn && rowInside && x0 >= 0 && x0 + k <= w) {
          for (let g = 0; g < groups; g++, src += 16) {
            const s = v128.load(src), gb = <usize>g << 4;
            const bits = i8x16.bitmask(v128.or(i8x16.gt_u(s, v128.load(hiAt + gb)), i8x16.lt_u(s, v128.load(loAt + gb))));
            if (g & 1) store<u16>(words + (<usize>(g >> 1) << 2), bits, 2);
            else store<u32>(words + (<usize>(g >> 1) << 2), bits);
          }
          continue;
        }
        for (let g = 0; g < groups; g++, src += 16) {
          const s = v128.load(src), lo = i16x8.extend_low_i8x16_u(s), hi = i16x8.extend_high_i8x16_u(s);
          const full = o - (g << 4) >= 16, d = full ? dst + (<usize>(g << 4) << 2) : tmp;
          v128.store(d, i32x4.sub(kv, i32x4.shl(i32x4.extend_low_i16x8_u(lo), 1)));
          v128.store(d, i32x4.sub(kv, i32x4.shl(i32x4.extend_high_i16x8_u(lo), 1)), 16);
          v128.store(d, i32x4.sub(kv, i32x4.shl(i32x4.extend_low_i16x8_u(hi), 1)), 32);
          v128.store(d, i32x4.sub(kv, i32x4.shl(i32x4.extend_high_i16x8_u(hi), 1)), 48);
          if (!full) for (let l = 0; l < o - (g << 4); l++) store<i32>(dst + (<usize>((g << 4) + l) << 2), load<i32>(tmp + (<usize>l << 2)));
        }
      }
    }
  }
}

/**
 * Pixel-major int32 accumulators acc [n, p, o] to float NCHW out [n, o, p]: y = f32(acc·mul + bias)
 * in float64 (added in float32 to out's values when `residual` ≠ 0); signs ≠ 0: also the plain
 * signs of y packed as [n, p, ⌈o/32⌉] words. Blocks of 4 pixels x 4 channels are transposed in
 * registers, so every plane gets 4 pixels per store.
 */
function floatEpilogueNCHW(acc: usize, mul: usize, bias: usize, out: usize, signs: usize, n: i32, o: i32, p: i32, residual: i32): void {
  const o4 = o & ~3, p4 = p & ~3, plane = <usize>p << 2, cw = (o + 31) >>> 5;
  if (signs) memory.fill(signs, 0, <usize>(n * p * cw) << 2);
  for (let b = 0; b < n; b++) {
    const ab = acc + (<usize>(b * p * o) << 2), ob = out + (<usize>(b * o * p) << 2), sb = signs + (<usize>(b * p * cw) << 2);
    for (let ch = 0; ch < o4; ch += 4) {
      // The 4 channels' mul and bias as f64x2 splats, and their sign bits, once per channel group.
      const m0 = splatF64(mul, ch), m1 = splatF64(mul, ch + 1), m2 = splatF64(mul, ch + 2), m3 = splatF64(mul, ch + 3);
      const c0 = splatF64(bias, ch), c1 = splatF64(bias, ch + 1), c2 = splatF64(bias, ch + 2), c3 = splatF64(bias, ch + 3);
      const sh = ch & 31, bit0 = i32x4.splat(1 << sh), bit1 = i32x4.splat(1 << (sh + 1)), bit2 = i32x4.splat(1 << (sh + 2)), bit3 = i32x4.splat(1 << (sh + 3));
      for (let q = 0; q < p4; q += 4) {
        // Rows: 4 channels of pixels q..q+3; transposed: 4 pixels of channels ch..ch+3.
        const r0 = v128.load(ab + (<usize>(q * o + ch) << 2)), r1 = v128.load(ab + (<usize>((q + 1) * o + ch) << 2));
        const r2 = v128.load(ab + (<usize>((q + 2) * o + ch) << 2)), r3 = v128.load(ab + (<usize>((q + 3) * o + ch) << 2));
        const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
        const d = ob + (<usize>(ch * p + q) << 2);
        const v0 = epilogue4(v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), m0, c0, d, residual);
        const v1 = epilogue4(v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), m1, c1, d + plane, residual);
        const v2 = epilogue4(v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), m2, c2, d + 2 * plane, residual);
        const v3 = epilogue4(v128.shuffle<i32>(t2, t3, 2, 3, 6, 7), m3, c3, d + 3 * plane, residual);
        if (signs) {
          // Bits of channels ch..ch+3 for the 4 pixels (one lane each), ORed into their words.
          const zero = f32x4.splat(0);
          let bits = v128.and(v128.not(f32x4.ge(v0, zero)), bit0);
          bits = v128.or(bits, v128.and(v128.not(f32x4.ge(v1, zero)), bit1));
          bits = v128.or(bits, v128.and(v128.not(f32x4.ge(v2, zero)), bit2));
          bits = v128.or(bits, v128.and(v128.not(f32x4.ge(v3, zero)), bit3));
          const sw = sb + (<usize>(q * cw + (ch >>> 5)) << 2);
          if (cw == 1) v128.store(sw, v128.or(v128.load(sw), bits));
          else {
            const step = <usize>cw << 2;
            store<u32>(sw, load<u32>(sw) | i32x4.extract_lane(bits, 0));
            store<u32>(sw + step, load<u32>(sw + step) | i32x4.extract_lane(bits, 1));
            store<u32>(sw + 2 * step, load<u32>(sw + 2 * step) | i32x4.extract_lane(bits, 2));
            store<u32>(sw + 3 * step, load<u32>(sw + 3 * step) | i32x4.extract_lane(bits, 3));
          }
        }
      }
    }
    // Tails: pixels p4..p of the full channel groups, then the last o mod 4 channels.
    for (let ch = 0; ch < o; ch++) {
      for (let q = ch < o4 ? p4 : 0; q < p; q++) {
        const v = <f64>load<i32>(ab + (<usize>(q * o + ch) << 2)) * <f64>load<f32>(mul + (<usize>ch << 2)) + <f64>load<f32>(bias + (<usize>ch << 2));
        const d = ob + (<usize>(ch * p + q) << 2), y = residual ? load<f32>(d) + <f32>v : <f32>v;
        store<f32>(d, y);
        if (signs && !(y >= 0)) {
          const sw = sb + (<usize>(q * cw + (ch >>> 5)) << 2);
          store<u32>(sw, load<u32>(sw) | ((<u32>1) << (ch & 31)));
        }
      }
    }
  }
}

/** f64x2.splat of float32 v[ch]. */
// @ts-ignore: decorator
@inline function splatF64(v: usize, ch: i32): v128 {
  return f64x2.splat(<f64>load<f32>(v + (<usize>ch << 2)));
}

/** f32(a·m + t) of 4 int32 lanes in float64 (two f64x2 halves; m, t: one channel's mul and bias splat), stored at d (plus d's values with residual); returns the stored values. */
// @ts-ignore: decorator
@inline function epilogue4(a: v128, m: v128, t: v128, d: usize, residual: i32): v128 {
  const lo = f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(a), m), t);
  const hi = f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(v128.shuffle<i32>(a, a, 2, 3, 2, 3)), m), t);
  let v = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
  if (residual) v = f32x4.add(v128.load(d), v);
  v128.store(d, v);
  return v;
}

/** Whether float v of channel ch is −1 (bit 1): not (dir > 0 ? v ≥ thr : dir < 0 ? v ≤ thr : thr ≥ 0); thr = 0: not v ≥ 0. */
// @ts-ignore: decorator
@inline function minusF32(v: f32, th: f32, d: i32): bool {
  return d > 0 ? !(v >= th) : d < 0 ? !(v <= th) : th < 0;
}

/**
 * Sign packing of float NCHW planes [n, c, p] (images [b0, b1)): four pixels per step, each
 * output word built in a register over its 32 channels (one load of 4 values per channel), then
 * stored; no read-modify-write per channel.
 */
function packPlanesF32(x: usize, thr: usize, dir: usize, out: usize, c: i32, p: i32, b0: i32, b1: i32): void {
  const cw = (c + 31) >>> 5, wordStep = <usize>cw << 2;
  for (let b = b0; b < b1; b++) {
    const xb = x + (<usize>(b * c * p) << 2), ob = out + (<usize>(b * p * cw) << 2);
    for (let wd = 0; wd < cw; wd++) {
      const c0 = wd << 5, c1 = min(c, c0 + 32);
      let q = 0;
      for (; q + 4 <= p; q += 4) {
        let word = i32x4.splat(0);
        for (let ch = c0; ch < c1; ch++) {
          const th = thr == 0 ? <f32>0 : load<f32>(thr + (<usize>ch << 2)), d = thr == 0 ? 1 : <i32>load<i8>(dir + <usize>ch);
          const v = v128.load(xb + (<usize>(ch * p + q) << 2)), tv = f32x4.splat(th);
          const minus = d > 0 ? v128.not(f32x4.ge(v, tv)) : d < 0 ? v128.not(f32x4.le(v, tv)) : th < 0 ? i32x4.splat(-1) : i32x4.splat(0);
          word = v128.or(word, v128.and(minus, i32x4.splat(1 << (ch & 31))));
        }
        const dst = ob + (<usize>(q * cw + wd) << 2);
        if (cw == 1) v128.store(dst, word);
        else {
          store<u32>(dst, i32x4.extract_lane(word, 0));
          store<u32>(dst + wordStep, i32x4.extract_lane(word, 1));
          store<u32>(dst + 2 * wordStep, i32x4.extract_lane(word, 2));
          store<u32>(dst + 3 * wordStep, i32x4.extract_lane(word, 3));
        }
      }
      for (; q < p; q++) {
        let word: u32 = 0;
        for (let ch = c0; ch < c1; ch++) {
          const th = thr == 0 ? <f32>0 : load<f32>(thr + (<usize>ch << 2)), d = thr == 0 ? 1 : <i32>load<i8>(dir + <usize>ch);
          if (minusF32(load<f32>(xb + (<usize>(ch * p + q) << 2)), th, d)) word |= (<u32>1) << (ch & 31);
        }
        store<u32>(ob + (<usize>(q * cw + wd) << 2), word);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function packChannels<T>(x: usize, thr: usize, dir: usize, out: usize, c: i32, p: i32, channelsLast: i32, b0: i32, b1: i32): void {
  const cw = (c + 31) >>> 5, outStep = <usize>cw << 2;
  for (let ch = 0; ch < c; ch++) {
    // Plain sign: +1 iff v >= 0, the compare with threshold 0, direction +1 (NaN: −1, as the reference).
    const th: T = thr == 0 ? <T>0 : load<T>(thr + (<usize>ch << 2));
    const d: i32 = thr == 0 ? 1 : <i32>load<i8>(dir + <usize>ch);
    const bit: u32 = (<u32>1) << (ch & 31);
    for (let b = b0; b < b1; b++) {
      let src = x + ((<usize>(channelsLast ? b * p * c + ch : (b * c + ch) * p)) << 2);
      const srcStep: usize = channelsLast ? <usize>c << 2 : 4;
      let o = out + ((<usize>(b * p * cw + (ch >>> 5))) << 2);
      if (d == 0) {
        if (th < <T>0) for (let q = 0; q < p; q++, o += outStep) store<u32>(o, load<u32>(o) | bit);
      } else if (d > 0) {
        for (let q = 0; q < p; q++, o += outStep, src += srcStep) if (!(load<T>(src) >= th)) store<u32>(o, load<u32>(o) | bit);
      } else {
        for (let q = 0; q < p; q++, o += outStep, src += srcStep) if (!(load<T>(src) <= th)) store<u32>(o, load<u32>(o) | bit);
      }
    }
  }
}

/**
 * Sign packing of [n, c, p] (channelsLast = 0) or [n, p, c] (channelsLast = 1) values, f32 (kind
 * 0) or i32 (kind 1), into packed [n·p, ceil(c/32)] for images [b0, b1); thr = 0: +1 iff v ≥ 0,
 * else the per-channel compare of binaryConvPacked (thresholds of the values' type).
 */
export function packSignsPacked(x: usize, thr: usize, dir: usize, out: usize, kind: i32, c: i32, p: i32, channelsLast: i32, b0: i32, b1: i32): void {
  const cw = (c + 31) >>> 5;
  if (kind == 0 && !channelsLast) {
    packPlanesF32(x, thr, dir, out, c, p, b0, b1);
    return;
  }
  memory.fill(out + ((<usize>b0 * p * cw) << 2), 0, (<usize>(b1 - b0) * p * cw) << 2);
  if (kind == 0) packChannels<f32>(x, thr, dir, out, c, p, channelsLast, b0, b1);
  else packChannels<i32>(x, thr, dir, out, c, p, channelsLast, b0, b1);
}

/**
 * k x k max-pooling (stride k, no padding) of packed signs x [n, h, w, cw] into [n, h/k, w/k, cw]
 * for output pixels [p0, p1). With bit 1 = −1 the max of ±1 values is +1 (bit 0) as soon as one
 * is +1: the AND of the sign bits.
 */
export function maxPoolPacked(x: usize, out: usize, h: i32, w: i32, cw: i32, k: i32, p0: i32, p1: i32): void {
  const oh = h / k, ow = w / k;
  for (let p = p0; p < p1; p++) {
    const xo = p % ow, y = (p / ow) % oh, b = p / (ow * oh);
    for (let t = 0; t < cw; t++) {
      let m: u32 = 0xffffffff;
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) m &= load<u32>(x + ((<usize>(((b * h + y * k + i) * w + xo * k + j) * cw + t)) << 2));
      }
      store<u32>(out + ((<usize>(p * cw + t)) << 2), m);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// int8 conv stage of the deploy runtime (src/quant/runtime.ts; reference: int8Conv in
// src/quant/kernels.ts, identical bits): quantize the float NCHW input into a zero-padded NHWC
// image of int8-range codes held as i16, run the conv as an implicit GEMM straight on that image
// (no im2col: each tap row of each output pixel is one contiguous span of k·c codes) against the
// weights' i16 rows (built once per weight array), float epilogue (+ ReLU, max-pool) into NCHW.
// Holding codes and weights as i16 feeds i32x4.dot_i16x8_s directly (the int8 GEMM's sign
// extensions outnumber its dot products); the sums are the same integers: |code · weight| ≤ 2^14,
// each pair sum fits in i32 and the i32 sums wrap exactly as the reference's.

/** q = clamp(roundHalfAway(v / step), lo, hi), NaN -> 0: the TypeScript rounding (floor + frac ≥ 0.5 on |v|). */
// @ts-ignore: decorator
@inline function code(v: f64, step: f64, lo: i32, hi: i32): i32 {
  const r = v / step;
  if (isNaN(r)) return 0;
  const a = Math.abs(r), f = Math.floor(a), m = a - f >= 0.5 ? f + 1 : f, s = r < 0 ? -m : m;
  return s <= <f64>lo ? lo : s >= <f64>hi ? hi : <i32>s;
}

/** code() of `count` consecutive floats at src into i16 at dst, dst + stride, ... (stride in bytes): four at a time in f64x2 lanes (the same operations), then the rest. */
function quantizeRun(src: usize, dst: usize, count: i32, stride: usize, step: f64, lo: i32, hi: i32): void {
  const sv = f64x2.splat(step), half = f64x2.splat(0.5), one = f64x2.splat(1), zero = f64x2.splat(0);
  const lov = f64x2.splat(<f64>lo), hiv = f64x2.splat(<f64>hi), magic = f64x2.splat(MAGIC);
  let q = 0;
  for (; q + 4 <= count; q += 4) {
    const xs = v128.load(src + (<usize>q << 2));
    const a = codes2(f64x2.div(f64x2.promote_low_f32x4(xs), sv), half, one, zero, lov, hiv, magic);
    const b = codes2(f64x2.div(f64x2.promote_low_f32x4(v128.shuffle<i32>(xs, xs, 2, 3, 2, 3)), sv), half, one, zero, lov, hiv, magic);
    // The low 32 bits of each lane are the codes.
    const i = v128.shuffle<i32>(a, b, 0, 2, 4, 6);
    const words = i16x8.narrow_i32x4_s(i, i);
    const d = dst + <usize>q * stride;
    if (stride == 2) v128.store64_lane(d, words, 0);
    else {
      store<i16>(d, i16x8.extract_lane_s(words, 0));
      store<i16>(d + stride, i16x8.extract_lane_s(words, 1));
      store<i16>(d + 2 * stride, i16x8.extract_lane_s(words, 2));
      store<i16>(d + 3 * stride, i16x8.extract_lane_s(words, 3));
    }
  }
  for (; q < count; q++) store<i16>(dst + <usize>q * stride, <i16>code(<f64>load<f32>(src + (<usize>q << 2)), step, lo, hi));
}

/** 1.5·2^52: an integer s with |s| ≤ 2^31 plus MAGIC is exact, with s (two's complement) in the low 32 bits. */
const MAGIC: f64 = 6755399441055744.0;

/**
 * code() on two f64 lanes r = v / step: half away from zero, clamped to [lo, hi] (pmax/pmin: a NaN
 * lane becomes lo, then 0 by the NaN mask), as f64 lanes s + MAGIC (low 32 bits: the code).
 */
// @ts-ignore: decorator
@inline function codes2(r: v128, half: v128, one: v128, zero: v128, lov: v128, hiv: v128, magic: v128): v128 {
  const a = f64x2.abs(r), f = f64x2.floor(a);
  const m = f64x2.add(f, v128.and(f64x2.ge(f64x2.sub(a, f), half), one));
  const s = f64x2.pmin(hiv, f64x2.pmax(lov, v128.bitselect(f64x2.neg(m), m, f64x2.lt(r, zero))));
  return f64x2.add(v128.and(s, f64x2.eq(r, r)), magic);
}

/** acc + the dot product of 8 i16 lanes (i32x4.dot_i16x8_s: exact pair sums, wrapping i32 adds). */
// @ts-ignore: decorator
@inline function dot8(acc: v128, x: v128, y: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(x, y));
}

/** Σ over the chunks of dot(weights row at a, the pixel's codes at b + offs[q]). */
// @ts-ignore: decorator
@inline function convDot1(a: usize, b: usize, offs: usize, chunks: i32): i32 {
  let s = i32x4.splat(0);
  for (let q = 0; q < chunks; q++) s = dot8(s, v128.load(a + (<usize>q << 4)), v128.load(b + <usize>load<u32>(offs + (<usize>q << 2))));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

/**
 * Implicit-GEMM conv on i16 codes: acc[ch, j] = Σ_q dot(chunk q of weights row ch, the 8 codes at
 * bases[j] + offs[q]) for o channels and `rows` pixels; bases: u32 [rows], each pixel's first code
 * in the image; offs: u32 [chunks], where each 16-byte chunk of a weights row reads (tap row i,
 * part t: i·tapStep + 16·t). Weights are zero past each tap row's k·c codes, so whatever a read
 * picks up beyond the span counts 0. Tiles: 2 channels x 4 pixels; with fewer than 4 pixels (a
 * dense layer at batch 1..3), 4 channels share each pixel load.
 */
function convGemm(wts: usize, bases: usize, offs: usize, acc: usize, o: i32, rows: i32, chunks: i32): void {
  const row = <usize>chunks << 4;
  let ch = 0;
  if (rows < 4) {
    for (; ch + 4 <= o; ch += 4) {
      const a0 = wts + <usize>ch * row, a1 = a0 + row, a2 = a1 + row, a3 = a2 + row;
      for (let j = 0; j < rows; j++) {
        let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
        const b = <usize>load<u32>(bases + (<usize>j << 2));
        for (let q = 0; q < chunks; q++) {
          const t = <usize>q << 4, y = v128.load(b + <usize>load<u32>(offs + (<usize>q << 2)));
          s0 = dot8(s0, v128.load(a0 + t), y);
          s1 = dot8(s1, v128.load(a1 + t), y);
          s2 = dot8(s2, v128.load(a2 + t), y);
          s3 = dot8(s3, v128.load(a3 + t), y);
        }
        const sums = hsum4(s0, s1, s2, s3), out = acc + ((<usize>ch * rows + j) << 2), step = <usize>rows << 2;
        store<i32>(out, i32x4.extract_lane(sums, 0));
        store<i32>(out + step, i32x4.extract_lane(sums, 1));
        store<i32>(out + 2 * step, i32x4.extract_lane(sums, 2));
        store<i32>(out + 3 * step, i32x4.extract_lane(sums, 3));
      }
    }
  }
  for (; ch + 2 <= o; ch += 2) {
    const a0 = wts + <usize>ch * row, a1 = a0 + row;
    let j = 0;
    for (; j + 4 <= rows; j += 4) {
      const pb = bases + (<usize>j << 2);
      const b0 = <usize>load<u32>(pb), b1 = <usize>load<u32>(pb, 4), b2 = <usize>load<u32>(pb, 8), b3 = <usize>load<u32>(pb, 12);
      let s00 = i32x4.splat(0), s01 = i32x4.splat(0), s02 = i32x4.splat(0), s03 = i32x4.splat(0);
      let s10 = i32x4.splat(0), s11 = i32x4.splat(0), s12 = i32x4.splat(0), s13 = i32x4.splat(0);
      // Pointer steps, one chunk per pass (chunks ≥ 1; unrolling by two measured slower: register spills).
      let w0 = a0, w1 = a1, po = offs;
      const end = offs + (<usize>chunks << 2);
      do {
        const f = <usize>load<u32>(po);
        const x0 = v128.load(w0), x1 = v128.load(w1);
        let y = v128.load(b0 + f);
        s00 = dot8(s00, x0, y); s10 = dot8(s10, x1, y);
        y = v128.load(b1 + f);
        s01 = dot8(s01, x0, y); s11 = dot8(s11, x1, y);
        y = v128.load(b2 + f);
        s02 = dot8(s02, x0, y); s12 = dot8(s12, x1, y);
        y = v128.load(b3 + f);
        s03 = dot8(s03, x0, y); s13 = dot8(s13, x1, y);
        w0 += 16;
        w1 += 16;
        po += 4;
      } while (po < end);
      const o0 = acc + ((<usize>ch * rows + j) << 2), o1 = o0 + (<usize>rows << 2);
      v128.store(o0, hsum4(s00, s01, s02, s03));
      v128.store(o1, hsum4(s10, s11, s12, s13));
    }
    for (; j < rows; j++) {
      const b = <usize>load<u32>(bases + (<usize>j << 2));
      store<i32>(acc + ((<usize>ch * rows + j) << 2), convDot1(a0, b, offs, chunks));
      store<i32>(acc + ((<usize>(ch + 1) * rows + j) << 2), convDot1(a1, b, offs, chunks));
    }
  }
  for (; ch < o; ch++) {
    for (let j = 0; j < rows; j++) store<i32>(acc + ((<usize>ch * rows + j) << 2), convDot1(wts + <usize>ch * row, <usize>load<u32>(bases + (<usize>j << 2)), offs, chunks));
  }
}

/**
 * x: float NCHW [n, c, h, w]; wts: i16 weight rows [o, k, tapBytes] (tap row i holds the (j, c)
 * codes of kernel row i, zero-padded to tapBytes, a multiple of 16 and ≥ 2·k·c); codes: scratch
 * 2·n·(h + 2·pad)·(w + 2·pad)·c + 16 bytes (i16 NHWC, zero-padded: every tap reads a code,
 * 0 outside the image; the slack covers the reads past the last span); bases: scratch u32
 * [n·oh·ow]; acc: scratch i32 [o, n·oh·ow]; out: float NCHW [n, o, oh, ow] (pool > 0: max-pooled,
 * [n, o, ⌊oh/pool⌋, ⌊ow/pool⌋]); bases is followed by k·tapBytes/16 u32 of scratch (the chunk offsets).
 */
export function int8ConvF32(
  x: usize, wts: usize, mul: usize, bias: usize, codes: usize, bases: usize, acc: usize, out: usize,
  n: i32, c: i32, h: i32, w: i32, o: i32, k: i32, stride: i32, pad: i32, oh: i32, ow: i32, tapBytes: i32,
  step: f64, lo: i32, hi: i32, relu: i32, pool: i32,
): void {
  const hw = h * w, hp = h + 2 * pad, wp = w + 2 * pad, cc = <usize>c << 1, p = oh * ow, rows = n * p;
  if (pad > 0) {
    const bytes = <usize>(n * hp * wp) * cc;
    for (let t: usize = 0; t < bytes; t += 16) v128.store(codes + t, i32x4.splat(0));
  }
  if (hw == 1 && pad == 0) quantizeRun(x, codes, n * c, 2, step, lo, hi); // [n, c, 1, 1]: NHWC is NCHW
  else {
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const src = x + (<usize>((b * c + ch) * hw) << 2), dst = codes + <usize>((b * hp + pad) * wp + pad) * cc + (<usize>ch << 1);
        for (let y = 0; y < h; y++) quantizeRun(src + (<usize>(y * w) << 2), dst + <usize>(y * wp) * cc, w, cc, step, lo, hi);
      }
    }
  }
  const xStep = <usize>stride * cc;
  let j: usize = bases;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      let src = codes + <usize>((b * hp + y * stride) * wp) * cc;
      for (let xo = 0; xo < ow; xo++, src += xStep, j += 4) store<u32>(j, <u32>src);
    }
  }
  const chunks = k * (tapBytes >> 4), offs = j, tapStep = <usize>wp * cc;
  for (let q = 0; q < chunks; q++) store<u32>(offs + (<usize>q << 2), <u32>(<usize>(q / (tapBytes >> 4)) * tapStep + (<usize>(q % (tapBytes >> 4)) << 4)));
  convGemm(wts, bases, offs, acc, o, rows, chunks);
  if (pool > 0) {
    int8PoolEpilogue(acc, mul, bias, out, n, o, oh, ow, pool, relu);
    return;
  }
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < o; ch++) {
      const m = <f64>load<f32>(mul + (<usize>ch << 2)), t = <f64>load<f32>(bias + (<usize>ch << 2)), mv = f64x2.splat(m), tv = f64x2.splat(t);
      const src = acc + (<usize>(ch * rows + b * p) << 2), dst = out + (<usize>((b * o + ch) * p) << 2);
      let q = 0;
      for (; q + 4 <= p; q += 4) v128.store(dst + (<usize>q << 2), epi4(src + (<usize>q << 2), mv, tv, relu));
      for (; q < p; q++) store<f32>(dst + (<usize>q << 2), epi(load<i32>(src + (<usize>q << 2)), m, t, relu));
    }
  }
}

/** epi on the accumulators in lanes 0 and 1 of a (results in f32 lanes 0 and 1). */
// @ts-ignore: decorator
@inline function epi2(a: v128, m: v128, t: v128, relu: i32): v128 {
  const v = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(a), m), t));
  return relu ? f32x4.pmax(f32x4.splat(0), v) : v;
}

/** epi on 4 consecutive accumulators at p (f64x2 lanes: the same roundings as the scalar path); ReLU as pmax(0, v): NaN and −0 give +0. */
// @ts-ignore: decorator
@inline function epi4(p: usize, m: v128, t: v128, relu: i32): v128 {
  const a = v128.load(p);
  const lo = f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(a), m), t);
  const hi = f64x2.add(f64x2.mul(f64x2.convert_low_i32x4_s(v128.shuffle<i32>(a, a, 2, 3, 2, 3)), m), t);
  const v = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
  return relu ? f32x4.pmax(f32x4.splat(0), v) : v;
}

/** y = f32(acc·m + t) in float64, then max(y, 0) with relu (NaN -> 0), as the reference. */
// @ts-ignore: decorator
@inline function epi(a: i32, m: f64, t: f64, relu: i32): f32 {
  const v = <f32>(<f64>a * m + t);
  return relu && !(v > 0) ? 0 : v;
}

/**
 * The epilogue of int8ConvF32 followed by a pool x pool max-pool with stride = window (the
 * runtime's maxPoolPlanes: 2 x 2 takes f32.max of each row pair, then the larger; else the first
 * value and every larger one): out float NCHW [n, o, ⌊oh/pool⌋, ⌊ow/pool⌋].
 */
function int8PoolEpilogue(acc: usize, mul: usize, bias: usize, out: usize, n: i32, o: i32, oh: i32, ow: i32, pool: i32, relu: i32): void {
  const p = oh * ow, rows = n * p, ph = oh / pool, pw = ow / pool;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < o; ch++) {
      const m = <f64>load<f32>(mul + (<usize>ch << 2)), t = <f64>load<f32>(bias + (<usize>ch << 2));
      const src = acc + (<usize>(ch * rows + b * p) << 2), dst = out + (<usize>((b * o + ch) * ph * pw) << 2);
      const mv = f64x2.splat(m), tv = f64x2.splat(t), monotone = m != 0 && m - m == 0, up = m > 0;
      for (let y = 0; y < ph; y++) {
        let xo = 0;
        if (pool == 2 && monotone) {
          // y = relu(f32(acc·m + t)) is monotone in acc for a finite m ≠ 0 (each step rounds
          // monotonically): the window's largest y is y of its largest acc (m > 0) or smallest (m < 0).
          const r0 = src + (<usize>(y * 2 * ow) << 2), r1 = r0 + (<usize>ow << 2), d = dst + (<usize>(y * pw) << 2);
          for (; xo + 2 <= pw; xo += 2) {
            const u = v128.load(r0 + (<usize>xo << 3)), v = v128.load(r1 + (<usize>xo << 3));
            let w = up ? i32x4.max_s(u, v) : i32x4.min_s(u, v);
            const sw = v128.shuffle<i32>(w, w, 1, 0, 3, 2);
            w = up ? i32x4.max_s(w, sw) : i32x4.min_s(w, sw);
            // Lanes 0 and 2 hold the two windows' accumulators.
            const r = epi2(v128.shuffle<i32>(w, w, 0, 2, 0, 2), mv, tv, relu);
            store<f32>(d + (<usize>xo << 2), f32x4.extract_lane(r, 0));
            store<f32>(d + (<usize>xo << 2), f32x4.extract_lane(r, 1), 4);
          }
        } else if (pool == 2) {
          // Two outputs per step: f32x4.max of each row's column pairs (lanes 0 and 2), then the larger row.
          const r0 = src + (<usize>(y * 2 * ow) << 2), r1 = r0 + (<usize>ow << 2), d = dst + (<usize>(y * pw) << 2);
          for (; xo + 2 <= pw; xo += 2) {
            const u = epi4(r0 + (<usize>xo << 3), mv, tv, relu), v = epi4(r1 + (<usize>xo << 3), mv, tv, relu);
            const a = f32x4.max(u, v128.shuffle<f32>(u, u, 1, 0, 3, 2)), c = f32x4.max(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
            const r = v128.bitselect(a, c, f32x4.gt(a, c));
            store<f32>(d + (<usize>xo << 2), f32x4.extract_lane(r, 0));
            store<f32>(d + (<usize>xo << 2), f32x4.extract_lane(r, 2), 4);
          }
        }
        for (; xo < pw; xo++) {
          const base = src + (<usize>(y * pool * ow + xo * pool) << 2);
          let r: f32;
          if (pool == 2) {
            const row = <usize>ow << 2;
            const a = max<f32>(epi(load<i32>(base), m, t, relu), epi(load<i32>(base, 4), m, t, relu));
            const c = max<f32>(epi(load<i32>(base + row), m, t, relu), epi(load<i32>(base + row, 4), m, t, relu));
            r = a > c ? a : c;
          } else {
            r = epi(load<i32>(base), m, t, relu);
            for (let i = 0; i < pool; i++) {
              for (let j = 0; j < pool; j++) {
                const v = epi(load<i32>(base + (<usize>(i * ow + j) << 2)), m, t, relu);
                if (v > r) r = v;
              }
            }
          }
          store<f32>(dst + (<usize>(y * pw + xo) << 2), r);
        }
      }
    }
  }
}

