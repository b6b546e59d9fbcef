/**
 * Reference kernels of the engine's generic ops: strided copies, elementwise maps, reductions,
 * softmax and cross-entropy, dropout, row gathers and average pooling (any float dtype).
 */
import type { AnyTypedArray, FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import { uniformAt } from '../../util/rng.js';
import type { ChannelLayout, Conv2dGeometry, ReduceLayout, UnaryOp } from '../kernels.js';

const floats = (t: Tensor): FloatArray => t.data() as FloatArray;

/** Element strides of `t` broadcast to `shape` (0 along broadcast and missing leading axes). */
function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(0);
  const off = shape.length - t.rank;
  for (let i = 0; i < t.rank; i++) s[off + i] = t.shape[i] === 1 ? 0 : t.strides[i]!;
  return s;
}

export function copy(src: Tensor, dst: Tensor): void {
  const shape = dst.shape, rank = shape.length;
  const sv = src.storage.view() as AnyTypedArray, dv = dst.storage.view() as AnyTypedArray;
  const ss = broadcastStrides(src, shape), ds = dst.strides;
  if (rank === 0) {
    dv[dst.offset] = sv[src.offset]!;
    return;
  }
  const inner = shape[rank - 1]!, si = ss[rank - 1]!, di = ds[rank - 1]!;
  const outer = inner === 0 ? 0 : dst.size / inner;
  const idx = new Array<number>(rank - 1).fill(0);
  let so = src.offset, o = dst.offset;
  for (let r = 0; r < outer; r++) {
    for (let i = 0; i < inner; i++) dv[o + i * di] = sv[so + i * si]!;
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      so += ss[d]!;
      o += ds[d]!;
      if (idx[d]! < shape[d]!) break;
      so -= ss[d]! * shape[d]!;
      o -= ds[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export function fill(dst: Tensor, value: number): void {
  dst.data().fill(value);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** The maps of `unary`, in float64. */
const UNARY: Record<UnaryOp, (x: number, s: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  softplus: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  // tanh-approximation GELU (as in GPT-2/BERT implementations) and its derivative.
  gelu: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x))),
  gelu_grad: (x) => {
    const t = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
  },
  mul_scalar: (x, s) => x * s,
  add_scalar: (x, s) => x + s,
  pow_scalar: (x, s) => Math.pow(x, s),
};

export function unary(op: UnaryOp, x: Tensor, out: Tensor, s: number): void {
  const f = UNARY[op], xv = floats(x), ov = floats(out);
  for (let i = 0; i < ov.length; i++) ov[i] = f(xv[i]!, s);
}

export function hardtanhMask(x: Tensor, y: Tensor, mask: Tensor | null, min: number, max: number): void {
  const xv = floats(x), yv = floats(y), mv = mask ? mask.data() : null;
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i]!;
    yv[i] = Math.min(max, Math.max(min, v));
    if (mv) mv[i] = v > min && v < max ? 1 : 0;
  }
}

export function channelAdd(x: Tensor, bias: Tensor, out: Tensor, { outer, channels: C, inner }: ChannelLayout): void {
  const xv = floats(x), bv = floats(bias), ov = floats(out);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const b = bv[c]!;
      for (let i = 0, p = (o * C + c) * inner; i < inner; i++) ov[p + i] = xv[p + i]! + b;
    }
  }
}

export function reduce(op: 'sum' | 'max', x: Tensor, y: Tensor, { outer, reduced, inner }: ReduceLayout, mask: Tensor | null): void {
  const xv = floats(x), yv = floats(y), mv = mask ? mask.data() : null;
  if (mv) mv.fill(0);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * reduced * inner + i;
      if (op === 'sum') {
        let s = 0;
        for (let r = 0; r < reduced; r++) s += xv[base + r * inner]!;
        yv[o * inner + i] = s;
        continue;
      }
      let best = -Infinity, at = -1;
      for (let r = 0; r < reduced; r++) {
        const v = xv[base + r * inner]!;
        if (at < 0 || v > best) {
          best = v;
          at = r;
        }
      }
      yv[o * inner + i] = at < 0 ? -Infinity : best;
      if (mv && at >= 0) mv[base + at * inner] = 1;
    }
  }
}

function logSumExp(src: FloatArray, off: number, n: number): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, src[off + i]!);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(src[off + i]! - m);
  return m + Math.log(s);
}

export function softmax(x: Tensor, y: Tensor, rows: number, n: number, log: boolean): void {
  const xv = floats(x), yv = floats(y);
  for (let r = 0, off = 0; r < rows; r++, off += n) {
    const l = logSumExp(xv, off, n);
    if (log) for (let i = 0; i < n; i++) yv[off + i] = xv[off + i]! - l;
    else for (let i = 0; i < n; i++) yv[off + i] = Math.exp(xv[off + i]! - l);
  }
}

export function crossEntropy(logits: Tensor, labels: Tensor, probs: Tensor): number {
  const xv = floats(logits), pv = floats(probs), lv = labels.data();
  const rows = lv.length, n = rows === 0 ? 0 : xv.length / rows;
  let total = 0;
  for (let r = 0, off = 0; r < rows; r++, off += n) {
    const l = logSumExp(xv, off, n);
    total += l - xv[off + lv[r]!]!;
    for (let i = 0; i < n; i++) pv[off + i] = Math.exp(xv[off + i]! - l);
  }
  return total / rows;
}

export function crossEntropyGrad(probs: Tensor, labels: Tensor, out: Tensor, scale: number): void {
  const pv = floats(probs), ov = floats(out), lv = labels.data();
  const n = lv.length === 0 ? 0 : pv.length / lv.length;
  for (let i = 0; i < ov.length; i++) ov[i] = pv[i]! * scale;
  for (let r = 0; r < lv.length; r++) ov[r * n + lv[r]!]! -= scale;
}

export function dropout(x: Tensor, out: Tensor, p: number, seed: number): void {
  const xv = floats(x), ov = floats(out);
  const u = new Float64Array(ov.length);
  uniformAt(seed, 0x0d0d, 0, ov.length, u);
  const keep = 1 / (1 - p);
  for (let i = 0; i < ov.length; i++) ov[i] = u[i]! >= p ? xv[i]! * keep : 0;
}

export function gatherRows(table: Tensor, ids: Tensor, out: Tensor): void {
  const tv = floats(table), iv = ids.data(), ov = floats(out), D = table.shape[1]!;
  for (let i = 0; i < iv.length; i++) ov.set(tv.subarray(iv[i]! * D, (iv[i]! + 1) * D), i * D);
}

export function scatterAddRows(g: Tensor, ids: Tensor, out: Tensor): void {
  const gv = floats(g), iv = ids.data(), ov = floats(out), D = out.shape[1]!;
  for (let i = 0; i < iv.length; i++) for (let d = 0, o = iv[i]! * D; d < D; d++) ov[o + d]! += gv[i * D + d]!;
}

/** Calls visit(outIndex, inIndex or -1 for padding) for every window element. */
function forEachWindow(g: Conv2dGeometry, visit: (oi: number, xi: number) => void): void {
  let oi = 0;
  for (let nc = 0; nc < g.n * g.c; nc++) {
    const base = nc * g.h * g.w;
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++, oi++) {
        for (let i = 0; i < g.kh; i++) {
          const y = oy * g.strideH - g.padH + i;
          for (let j = 0; j < g.kw; j++) {
            const x = ox * g.strideW - g.padW + j;
            visit(oi, y >= 0 && y < g.h && x >= 0 && x < g.w ? base + y * g.w + x : -1);
          }
        }
      }
    }
  }
}

export function avgPool2d(x: Tensor, out: Tensor, g: Conv2dGeometry): void {
  const xv = floats(x), ov = floats(out), scale = 1 / (g.kh * g.kw);
  ov.fill(0);
  forEachWindow(g, (oi, xi) => {
    if (xi >= 0) ov[oi]! += xv[xi]! * scale;
  });
}

export function avgPool2dGrad(gy: Tensor, dx: Tensor, g: Conv2dGeometry): void {
  const gv = floats(gy), dv = floats(dx), scale = 1 / (g.kh * g.kw);
  forEachWindow(g, (oi, xi) => {
    if (xi >= 0) dv[xi]! += gv[oi]! * scale;
  });
}
