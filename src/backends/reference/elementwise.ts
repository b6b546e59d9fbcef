/** Reference per-channel and activation kernels (any float dtype); the oracle for kernels/elementwise.ts. */
import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { AdamStep, BinaryOp, ChannelAffineArgs, ChannelLayout, SgdStep } from '../kernels.js';

const floats = (t: Tensor): FloatArray => t.data() as FloatArray;

export function channelMoments(x: Tensor, mean: Tensor, variance: Tensor, { outer, channels: C, inner }: ChannelLayout): void {
  const xv = floats(x), mv = floats(mean), vv = floats(variance);
  const count = outer * inner;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let o = 0; o < outer; o++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) s += xv[b + i]!;
    const m = s / count;
    let q = 0;
    for (let o = 0; o < outer; o++) {
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
        const d = xv[b + i]! - m;
        q += d * d;
      }
    }
    mv[c] = m;
    vv[c] = q / count;
  }
}

export function channelAffine(x: Tensor, out: Tensor, a: ChannelAffineArgs, { outer, channels: C, inner }: ChannelLayout): void {
  const xv = floats(x), ov = floats(out), mv = floats(a.mean), sv = floats(a.scale), hv = floats(a.shift);
  const uv = a.u ? floats(a.u) : null, av = a.uScale ? floats(a.uScale) : null;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const m = mv[c]!, s = sv[c]!, h = hv[c]!, us = av ? av[c]! : 0;
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) ov[b + i] = (xv[b + i]! - m) * s + h + (uv ? uv[b + i]! * us : 0);
    }
  }
}

export function channelGradSums(g: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, sumG: Tensor, sumGXhat: Tensor, { outer, channels: C, inner }: ChannelLayout): void {
  const gv = floats(g), xv = floats(x), mv = floats(mean), iv = floats(invStd), s1v = floats(sumG), s2v = floats(sumGXhat);
  for (let c = 0; c < C; c++) {
    const m = mv[c]!;
    let s1 = 0, s2 = 0;
    for (let o = 0; o < outer; o++) {
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
        s1 += gv[b + i]!;
        s2 += gv[b + i]! * (xv[b + i]! - m);
      }
    }
    s1v[c] = s1;
    s2v[c] = s2 * iv[c]!;
  }
}

export function reluMask(x: Tensor, y: Tensor, mask: Tensor | null, slope: number): void {
  const xv = floats(x), yv = floats(y), mv = mask ? mask.data() : null;
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i]!;
    yv[i] = v > 0 ? v : slope === 0 ? 0 : v * slope; // not v * 0: -Infinity * 0 is NaN
    if (mv) mv[i] = v > 0 ? 1 : 0;
  }
}

export function maskMul(g: Tensor, mask: Tensor, out: Tensor, scaleOff: number): void {
  const gv = floats(g), mv = mask.data(), ov = floats(out);
  for (let i = 0; i < ov.length; i++) ov[i] = mv[i] ? gv[i]! : gv[i]! * scaleOff;
}

export function binary(op: BinaryOp, a: Tensor, b: Tensor, out: Tensor): void {
  const av = floats(a), bv = floats(b), ov = floats(out), m = bv.length;
  // One loop per op: a per-element switch or closure would dominate these loops.
  for (let r = 0; r < ov.length; r += m) {
    if (op === 'add') for (let j = 0; j < m; j++) ov[r + j] = av[r + j]! + bv[j]!;
    else if (op === 'sub') for (let j = 0; j < m; j++) ov[r + j] = av[r + j]! - bv[j]!;
    else if (op === 'mul') for (let j = 0; j < m; j++) ov[r + j] = av[r + j]! * bv[j]!;
    else for (let j = 0; j < m; j++) ov[r + j] = av[r + j]! / bv[j]!;
  }
}

export function sgdUpdate(wt: Tensor, gt: Tensor, buft: Tensor | null, { lr, momentum: mu, weightDecay: wd, nesterov, first }: SgdStep): void {
  const w = floats(wt), g = floats(gt);
  if (mu === 0) {
    for (let i = 0; i < w.length; i++) w[i]! -= lr * (g[i]! + wd * w[i]!);
    return;
  }
  if (!buft) throw new Error('sgdUpdate: momentum needs a buffer');
  const buf = floats(buft);
  for (let i = 0; i < w.length; i++) {
    const d = g[i]! + wd * w[i]!;
    const b = (buf[i] = first ? d : mu * buf[i]! + d);
    w[i]! -= lr * (nesterov ? d + mu * b : b);
  }
}

export function adamUpdate(wt: Tensor, gt: Tensor, mt: Tensor, vt: Tensor, s: AdamStep): void {
  const w = floats(wt), g = floats(gt), m = floats(mt), v = floats(vt);
  const { beta1: b1, beta2: b2, eps, lr, weightDecay: wd, decoupled, stepSize, invC2 } = s;
  for (let i = 0; i < w.length; i++) {
    let gi = g[i]!;
    if (wd && !decoupled) gi += wd * w[i]!;
    if (wd && decoupled) w[i]! -= lr * wd * w[i]!;
    const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
    const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
    w[i]! -= (stepSize * mi) / (Math.sqrt(vi) * invC2 + eps);
  }
}
