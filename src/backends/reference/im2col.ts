import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { Conv2dGeometry, ConvGemmArgs } from '../kernels.js';

/**
 * Visits every (row of cols, output pixel) pair with the input offset it reads (-1 = padding);
 * with `flip`, row (c, i, j) reads window tap (kh-1-i, kw-1-j).
 */
function walk(g: Conv2dGeometry, img: number, c0: number, cg: number, visit: (colIndex: number, xIndex: number) => void, flip = false): void {
  const plane = g.h * g.w;
  const outPlane = g.outH * g.outW;
  let row = 0;
  for (let c = c0; c < c0 + cg; c++) {
    const base = (img * g.c + c) * plane;
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++, row++) {
        const rowBase = row * outPlane;
        for (let oy = 0; oy < g.outH; oy++) {
          const y = oy * g.strideH - g.padH + (flip ? g.kh - 1 - i : i) * g.dilationH;
          const inY = y >= 0 && y < g.h;
          for (let ox = 0; ox < g.outW; ox++) {
            const x = ox * g.strideW - g.padW + (flip ? g.kw - 1 - j : j) * g.dilationW;
            visit(rowBase + oy * g.outW + ox, inY && x >= 0 && x < g.w ? base + y * g.w + x : -1);
          }
        }
      }
    }
  }
}

export function im2col(xt: Tensor, colsT: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images = 1): void {
  const x = xt.data() as FloatArray, cols = colsT.data() as FloatArray;
  const block = cg * g.kh * g.kw * g.outH * g.outW;
  for (let k = 0; k < images; k++) {
    walk(g, img + k, c0, cg, (ci, xi) => {
      cols[k * block + ci] = xi < 0 ? 0 : x[xi]!;
    });
  }
}

/** convGemm by its definition: every (row of cols, output pixel) product added where it belongs, no columns written. */
export function convGemm(at: Tensor, xt: Tensor, ct: Tensor, g: Conv2dGeometry, p: ConvGemmArgs): void {
  const a = at.data() as FloatArray, x = xt.data() as FloatArray, c = ct.data() as FloatArray;
  const kk = p.cg * g.kh * g.kw, hw = g.outH * g.outW, m = p.m;
  if (p.images < 1) throw new RangeError(`convGemm: images must be >= 1, got ${p.images}`);
  if (!p.accumulate) {
    if (p.weightGrad) c.fill(0, 0, m * kk);
    else for (let i = 0; i < p.images; i++) c.fill(0, i * p.cStride, i * p.cStride + m * hw);
  }
  for (let i = 0; i < p.images; i++) {
    const ao = i * p.aStride, co = i * p.cStride;
    walk(g, p.img + i, p.c0, p.cg, (ci, xi) => {
      if (xi < 0) return;
      const row = Math.floor(ci / hw), q = ci - row * hw, v = x[xi]!;
      if (p.weightGrad) for (let r = 0; r < m; r++) c[r * kk + row]! += a[ao + r * hw + q]! * v;
      else for (let r = 0; r < m; r++) c[co + r * hw + q]! += a[ao + r * kk + row]! * v;
    }, p.flip);
  }
}

export function col2im(colsT: Tensor, dxT: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images = 1): void {
  const cols = colsT.data() as FloatArray, dx = dxT.data() as FloatArray;
  const block = cg * g.kh * g.kw * g.outH * g.outW;
  for (let k = 0; k < images; k++) {
    walk(g, img + k, c0, cg, (ci, xi) => {
      if (xi >= 0) dx[xi]! += cols[k * block + ci]!;
    });
  }
}
