/**
 * DIVISION frequency split (act.md §5) on typed arrays. For x [N, C, H, W]:
 * LFC L = P×P block averages (border blocks average the elements present), kept as bfloat16;
 * HFC R = x − upsample(bf16(L)), quantized (by the caller, quantize.ts) per (sample, channel) map
 * at `hfcBits` with stochastic rounding. R is taken against the same rounded L the decoder rebuilds, so the only error is R's
 * quantization. Bits per element ≈ 16/P² + hfcBits + 32/(H·W) (fp16 metadata).
 */
import { fromBFloat16Bits, toBFloat16Bits } from './float16.js';
import { dequantizeGroups, type CodeBits, type FloatArray, type GroupLayout } from './quantize.js';

export interface DivisionGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  block: number;
}

export function lfcShape(g: DivisionGeometry): [number, number] {
  return [Math.ceil(g.h / g.block), Math.ceil(g.w / g.block)];
}

export function lfcLength(g: DivisionGeometry): number {
  const [lh, lw] = lfcShape(g);
  return g.n * g.c * lh * lw;
}

export function hfcLayout(g: DivisionGeometry): GroupLayout {
  return { rows: g.n * g.c, rowLength: g.h * g.w, groupSize: Math.max(1, g.h * g.w) };
}

/**
 * With `x`, writes bf16(L) to `lfc`; then writes (or, with `add`, adds) the upsampled LFC to `up`
 * (same layout as x).
 */
function lowFrequency(x: FloatArray | null, g: DivisionGeometry, lfc: Uint16Array, up: FloatArray, add: boolean): void {
  const { h, w, block: P } = g;
  const [lh, lw] = lfcShape(g);
  for (let m = 0; m < g.n * g.c; m++) {
    const base = m * h * w;
    for (let by = 0; by < lh; by++) {
      const y0 = by * P, y1 = Math.min(y0 + P, h);
      for (let bx = 0; bx < lw; bx++) {
        const x0 = bx * P, x1 = Math.min(x0 + P, w);
        const li = (m * lh + by) * lw + bx;
        if (x) {
          let s = 0;
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += x![base + yy * w + xx]!;
          lfc[li] = toBFloat16Bits(s / ((y1 - y0) * (x1 - x0)));
        }
        const v = fromBFloat16Bits(lfc[li]!);
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) {
          const i = base + yy * w + xx;
          up[i] = add ? up[i]! + v : v;
        }
      }
    }
  }
}

/** Writes bf16(L) to `lfc` (lfcLength values) and the residual x − upsample(bf16(L)) to `residual`. */
export function divisionSplit(x: FloatArray, g: DivisionGeometry, lfc: Uint16Array, residual: FloatArray): void {
  lowFrequency(x, g, lfc, residual, false);
  for (let i = 0; i < x.length; i++) residual[i] = x[i]! - residual[i]!;
}

/** Decodes into `out`: the dequantized residual (see quantizeGroups, hfcLayout) plus the upsampled LFC. */
export function divisionDecode(lfc: Uint16Array, codes: Uint8Array, meta: ArrayLike<number>, g: DivisionGeometry, hfcBits: CodeBits, out: FloatArray): void {
  dequantizeGroups(codes, meta, hfcLayout(g), hfcBits, out);
  lowFrequency(null, g, lfc, out, true);
}
