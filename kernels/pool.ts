// Max pooling over NCHW float32 planes, recording the window position of each maximum as a u8.
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
 * comparisons in the same order as the general loop, without its bounds checks.
 */
function maxPool2x2(x: usize, out: usize, index: usize, planes: i32, h: i32, w: i32, outH: i32, outW: i32): void {
  const row = <usize>w << 2;
  for (let plane = 0; plane < planes; plane++) {
    const base = x + ((<usize>plane * h * w) << 2);
    for (let oy = 0; oy < outH; oy++) {
      let p = base + ((<usize>(oy * 2) * w) << 2);
      for (let ox = 0; ox < outW; ox++) {
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

/** Adds gy into dx at the positions recorded by maxPool2d. */
export function maxPool2dGrad(
  gy: usize, index: usize, dx: usize, planes: i32, h: i32, w: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32,
): void {
  for (let plane = 0; plane < planes; plane++) {
    const base = dx + ((<usize>plane * h * w) << 2);
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
