// im2col / col2im over NCHW float32 images. For each (channel, ky, kx) row of cols and each output
// row oy, the output columns ox whose input x falls inside the image form one interval
// [oxLo, oxHi): padding outside it is filled with zeros (im2col) or skipped (col2im), and the
// inside is a contiguous copy when strideW == 1.

import { copyStrided, endInside, firstInside, zeroFloats } from './rows';

// @ts-ignore: decorator
@inline function forEachRow(
  x: usize, cols: usize, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, outH: i32, outW: i32, img: i32, c0: i32, cg: i32, scatter: bool,
): void {
  let col = cols;
  for (let ch = c0; ch < c0 + cg; ch++) {
    const plane = x + ((<usize>(img * c + ch) * h * w) << 2);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const offX = j * dw;
        const lo = min(outW, firstInside(offX - pw, sw));
        const hi = max(lo, min(outW, endInside(w, offX - pw, sw)));
        for (let oy = 0; oy < outH; oy++) {
          const y = oy * sh - ph + i * dh;
          if (y < 0 || y >= h) {
            if (!scatter) zeroFloats(col, outW);
          } else if (hi == lo) {
            if (!scatter) zeroFloats(col, outW);
          } else {
            // The image element under output column lo.
            const pixel = plane + ((<usize>y * w + lo * sw - pw + offX) << 2);
            if (scatter) {
              addStrided(pixel, col + (<usize>lo << 2), hi - lo, sw);
            } else {
              zeroFloats(col, lo);
              copyStrided(col + (<usize>lo << 2), pixel, hi - lo, sw);
              zeroFloats(col + (<usize>hi << 2), outW - hi);
            }
          }
          col += <usize>outW << 2;
        }
      }
    }
  }
}

/** dst[t*stride] += src[t] for t < count. */
// @ts-ignore: decorator
@inline function addStrided(dst: usize, src: usize, count: i32, stride: i32): void {
  let t = 0;
  if (ASC_FEATURE_SIMD && stride == 1) {
    for (; t + 4 <= count; t += 4) {
      const o = <usize>t << 2;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
    }
  }
  for (; t < count; t++) {
    const d = dst + (<usize>t * stride << 2);
    store<f32>(d, load<f32>(d) + load<f32>(src + (<usize>t << 2)));
  }
}

/**
 * Unfolds channels [c0, c0+cg) of images [img, img+images) of x into cols: image k's
 * (cg*kh*kw) x (outH*outW) block starts `imageStride` bytes after image k-1's.
 */
export function im2col(
  x: usize, cols: usize, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, outH: i32, outW: i32, img: i32, c0: i32, cg: i32, images: i32, imageStride: i32,
): void {
  for (let k = 0; k < images; k++) {
    forEachRow(x, cols + <usize>k * imageStride, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, outH, outW, img + k, c0, cg, false);
  }
}

/** The adjoint of im2col: adds cols into channels [c0, c0+cg) of images [img, img+images) of dx. */
export function col2im(
  cols: usize, dx: usize, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, outH: i32, outW: i32, img: i32, c0: i32, cg: i32, images: i32, imageStride: i32,
): void {
  for (let k = 0; k < images; k++) {
    forEachRow(dx, cols + <usize>k * imageStride, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, outH, outW, img + k, c0, cg, true);
  }
}
