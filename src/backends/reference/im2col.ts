import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { Conv2dGeometry } from '../kernels.js';

/** Visits every (row of cols, output pixel) pair with the input offset it reads (-1 = padding). */
function walk(g: Conv2dGeometry, img: number, c0: number, cg: number, visit: (colIndex: number, xIndex: number) => void): void {
  const plane = g.h * g.w;
  const outPlane = g.outH * g.outW;
  let row = 0;
  for (let c = c0; c < c0 + cg; c++) {
    const base = (img * g.c + c) * plane;
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++, row++) {
        const rowBase = row * outPlane;
        for (let oy = 0; oy < g.outH; oy++) {
          const y = oy * g.strideH - g.padH + i * g.dilationH;
          const inY = y >= 0 && y < g.h;
          for (let ox = 0; ox < g.outW; ox++) {
            const x = ox * g.strideW - g.padW + j * g.dilationW;
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

export function col2im(colsT: Tensor, dxT: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images = 1): void {
  const cols = colsT.data() as FloatArray, dx = dxT.data() as FloatArray;
  const block = cg * g.kh * g.kw * g.outH * g.outW;
  for (let k = 0; k < images; k++) {
    walk(g, img + k, c0, cg, (ci, xi) => {
      if (xi >= 0) dx[xi]! += cols[k * block + ci]!;
    });
  }
}
