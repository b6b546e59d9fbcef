// Max pooling over NCHW float32 planes, recording the window position of each maximum as a u8,
// and its gradient (which writes every element of dx).
// Mirrors src/backends/reference/pool.ts exactly (same window order, strict >, so ties keep the first).

/** Pools planes [0, planes) of x into out/index. */
export function maxPool2d(
  x: usize, out: usize, index: usize, planes: i32, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32,
): void {
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    maxPool2x2(x, out, index, planes, h, w, outH, outW);
    return;
  }
  for (let plane = 0; plane < planes; plane++) {
    const base = x + ((<usize>plane * h * w) << 2);
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - ph;
      for (let ox = 0; ox < outW; ox++) {
        const x0 = ox * sw - pw;
        let best = -Infinity as f32;
        let pos = 0;
        for (let i = 0; i < kh; i++) {
          const y = y0 + i;
          const rowInside = y >= 0 && y < h;
          for (let j = 0; j < kw; j++) {
            const xx = x0 + j;
            const v: f32 = rowInside && xx >= 0 && xx < w ? load<f32>(base + ((<usize>y * w + xx) << 2)) : -Infinity;
            if (v > best) {
              best = v;
              pos = i * kw + j;
            }
          }
        }
        store<f32>(out, best);
        store<u8>(index, <u8>pos);
        out += 4;
        index += 1;
      }
    }
  }
}

/**
 * The common 2x2 window, stride 2, no padding (every window inside the image): the same
 * comparisons in the same order as the general loop, without its bounds checks; with SIMD, four
 * windows at a time (their four corners gathered into lanes, compared and selected lane-wise).
 */
function maxPool2x2(x: usize, out: usize, index: usize, planes: i32, h: i32, w: i32, outH: i32, outW: i32): void {
  const row = <usize>w << 2;
  for (let plane = 0; plane < planes; plane++) {
    const base = x + ((<usize>plane * h * w) << 2);
    for (let oy = 0; oy < outH; oy++) {
      let p = base + ((<usize>(oy * 2) * w) << 2);
      let ox = 0;
      if (ASC_FEATURE_SIMD) {
        const negInf = f32x4.splat(-Infinity);
        for (; ox + 4 <= outW; ox += 4) {
          const r0a = v128.load(p), r0b = v128.load(p + 16), r1a = v128.load(p + row), r1b = v128.load(p + row + 16);
          const a = v128.shuffle<f32>(r0a, r0b, 0, 2, 4, 6), b = v128.shuffle<f32>(r0a, r0b, 1, 3, 5, 7);
          const c = v128.shuffle<f32>(r1a, r1b, 0, 2, 4, 6), d = v128.shuffle<f32>(r1a, r1b, 1, 3, 5, 7);
          let m = f32x4.gt(a, negInf);
          let best = v128.bitselect(a, negInf, m);
          let pos = i32x4.splat(0);
          m = f32x4.gt(b, best);
          best = v128.bitselect(b, best, m);
          pos = v128.bitselect(i32x4.splat(1), pos, m);
          m = f32x4.gt(c, best);
          best = v128.bitselect(c, best, m);
          pos = v128.bitselect(i32x4.splat(2), pos, m);
          m = f32x4.gt(d, best);
          best = v128.bitselect(d, best, m);
          pos = v128.bitselect(i32x4.splat(3), pos, m);
          v128.store(out, best);
          const pos16 = i16x8.narrow_i32x4_u(pos, pos);
          store<i32>(index, i32x4.extract_lane(i8x16.narrow_i16x8_u(pos16, pos16), 0));
          out += 16;
          index += 4;
          p += 32;
        }
      }
      for (; ox < outW; ox++) {
        let best = -Infinity as f32;
        let pos = 0;
        const a = load<f32>(p), b = load<f32>(p + 4), c = load<f32>(p + row), d = load<f32>(p + row + 4);
        if (a > best) { best = a; pos = 0; }
        if (b > best) { best = b; pos = 1; }
        if (c > best) { best = c; pos = 2; }
        if (d > best) { best = d; pos = 3; }
        store<f32>(out, best);
        store<u8>(index, <u8>pos);
        out += 4;
        index += 1;
        p += 8;
      }
    }
  }
}

/**
 * Writes planes [0, planes) of dx: zero, plus each gy element at the position maxPool2d recorded
 * for its window (added onto the zero: +0 + g, so a -0 gradient lands as +0, the same bits
 * whatever path). No caller-side zero fill: each thread clears the planes it writes.
 */
export function maxPool2dGrad(
  gy: usize, index: usize, dx: usize, planes: i32, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32,
): void {
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    maxPool2x2Grad(gy, index, dx, planes, h, w, outH, outW);
    return;
  }
  for (let plane = 0; plane < planes; plane++) {
    const base = dx + ((<usize>plane * h * w) << 2);
    memory.fill(base, 0, (<usize>h * w) << 2);
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const pos = <i32>load<u8>(index);
        const y = oy * sh - ph + pos / kw;
        const xx = ox * sw - pw + pos % kw;
        if (y >= 0 && y < h && xx >= 0 && xx < w) {
          const d = base + ((<usize>y * w + xx) << 2);
          store<f32>(d, load<f32>(d) + load<f32>(gy));
        }
        gy += 4;
        index += 1;
      }
    }
  }
}

/**
 * The 2x2 stride-2 gradient: every window inside the plane, so no bounds checks and no division
 * by the window width. The plane is cleared with memory.fill first (a bulk fill: writing a cold
 * plane element by element cost ~4x as much inside a training step, each store fetching its
 * cache line), then each gradient lands at its window's recorded corner.
 */
function maxPool2x2Grad(gy: usize, index: usize, dx: usize, planes: i32, h: i32, w: i32, outH: i32, outW: i32): void {
  const row = <usize>w << 2;
  for (let plane = 0; plane < planes; plane++) {
    const base = dx + ((<usize>plane * h * w) << 2);
    memory.fill(base, 0, (<usize>h * w) << 2);
    for (let oy = 0; oy < outH; oy++) {
      let p = base + ((<usize>(oy * 2) * w) << 2);
      for (let ox = 0; ox < outW; ox++) {
        const pos = <i32>load<u8>(index);
        const d = p + (pos & 2 ? row : 0) + (<usize>(pos & 1) << 2);
        store<f32>(d, <f32>0 + load<f32>(gy));
        p += 8;
        gy += 4;
        index += 1;
      }
    }
  }
}
