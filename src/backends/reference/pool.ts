import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { Conv2dGeometry } from '../kernels.js';

export function maxPool2d(xt: Tensor, outT: Tensor, indexT: Tensor, g: Conv2dGeometry): void {
  const x = xt.data() as FloatArray, out = outT.data() as FloatArray, index = indexT.data();
  let oi = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * g.h * g.w;
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++, oi++) {
        let best = -Infinity, pos = 0;
        for (let i = 0; i < g.kh; i++) {
          const y = oy * g.strideH - g.padH + i;
          for (let j = 0; j < g.kw; j++) {
            const xx = ox * g.strideW - g.padW + j;
            const v = y >= 0 && y < g.h && xx >= 0 && xx < g.w ? x[base + y * g.w + xx]! : -Infinity;
            if (v > best) {
              best = v;
              pos = i * g.kw + j;
            }
          }
        }
        out[oi] = best;
        index[oi] = pos;
      }
    }
  }
}

export function maxPool2dGrad(gyT: Tensor, indexT: Tensor, dxT: Tensor, g: Conv2dGeometry): void {
  const gy = gyT.data() as FloatArray, index = indexT.data(), dx = dxT.data() as FloatArray;
  dx.fill(0, 0, g.n * g.c * g.h * g.w);
  let oi = 0;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const base = plane * g.h * g.w;
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++, oi++) {
        const pos = index[oi]!;
        const y = oy * g.strideH - g.padH + Math.floor(pos / g.kw);
        const xx = ox * g.strideW - g.padW + (pos % g.kw);
        if (y >= 0 && y < g.h && xx >= 0 && xx < g.w) dx[base + y * g.w + xx]! += gy[oi]!;
      }
    }
  }
}
