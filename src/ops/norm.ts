/**
 * Batch and layer normalization. Both save their input plus float statistics (mean, inverse
 * standard deviation), and gamma (a parameter: never counted or compressed); the normalized
 * value is recomputed in backward.
 *
 * Both view x as [outer, C, inner]. Batch norm: statistics per channel c over (outer, inner),
 * gamma per channel. Layer norm: statistics per outer row over (C = D, inner = 1), gamma per d.
 */
import type { FloatArray } from '../core/dtype.js';
import { fmt, ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { ChannelLayout } from '../backends/kernels.js';
import { contiguous } from './elementwise.js';
import { defineOp, runOp, type ForwardContext, type TensorMeta } from './registry.js';

export interface BatchNormAttrs {
  training: boolean;
  momentum: number;
  eps: number;
  /** Running statistics, updated in place in training mode (buffers, not inputs). */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
}

export interface LayerNormAttrs {
  eps: number;
}

function checkAffine(op: string, x: TensorMeta, p: TensorMeta | null, n: number, what: string): void {
  if (p && (p.shape.length !== 1 || p.shape[0] !== n)) throw new ShapeError(op, `${what} must be [${n}] for input ${fmt(x.shape)}, got ${fmt(p.shape)}`);
}

const floats = (t: Tensor | null): FloatArray | null => (t ? (t.data() as FloatArray) : null);

/** Batch norm's view of x: [N, C, rest]. */
function channelLayout(x: TensorMeta): ChannelLayout {
  const outer = x.shape[0]!, channels = x.shape[1]!;
  return { outer, channels, inner: outer * channels === 0 ? 0 : x.shape.reduce((p, d) => p * d, 1) / (outer * channels) };
}


/** y = (x - mean) * invStd * gamma + beta over the [outer, C, inner] layout; stats per channel (bn) or per row (ln). */
function normalize(x: FloatArray, y: FloatArray, mean: FloatArray, invStd: FloatArray, gamma: FloatArray | null, beta: FloatArray | null, outer: number, C: number, inner: number, perRow: boolean): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const s = perRow ? o : c;
      const scale = invStd[s]! * (gamma ? gamma[c]! : 1);
      const shift = (beta ? beta[c]! : 0) - mean[s]! * scale;
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) y[b + i] = x[b + i]! * scale + shift;
    }
  }
}

/** Saves what norm_grad reads; the statistics tensors then belong to their slots. */
function saveForNormGrad(ctx: ForwardContext, x: Tensor, gamma: Tensor | null, mean: Tensor, invStd: Tensor): void {
  ctx.save('x', x);
  if (gamma) ctx.save('gamma', gamma);
  ctx.save('mean', mean);
  ctx.save('invStd', invStd);
  mean.dispose();
  invStd.dispose();
}

const batchNormOp = defineOp<BatchNormAttrs>({
  name: 'batchnorm',
  secondOrder: false,
  inputs: ['x', 'gamma?', 'beta?'],
  saves: { x: 'input', gamma: 'input', mean: 'stats', invStd: 'stats' },
  infer: ([x, gamma, beta]) => {
    if (x!.shape.length < 2) throw new ShapeError('batchnorm', `input must be [N, C, ...], got ${fmt(x!.shape)}`);
    checkAffine('batchnorm', x!, gamma, x!.shape[1]!, 'gamma');
    checkAffine('batchnorm', x!, beta, x!.shape[1]!, 'beta');
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x, gamma, beta], a) {
    const layout = channelLayout(x!);
    const C = layout.channels, count = layout.outer * layout.inner;
    const k = kernels(x!.dtype);
    const xc = contiguous(x!);
    const mean = Tensor.uninitialized([C], x!.dtype), invStd = Tensor.uninitialized([C], x!.dtype);
    if (a.training) {
      if (count < 2) throw new ShapeError('batchnorm', `training needs more than one value per channel, got input ${fmt(x!.shape)}`);
      const variance = Tensor.uninitialized([C], x!.dtype, 'workspace');
      k.channelMoments(xc, mean, variance, layout);
      const mv = mean.data() as FloatArray, vv = variance.data() as FloatArray, iv = invStd.data() as FloatArray;
      const rm = floats(a.runningMean ?? null), rv = floats(a.runningVar ?? null);
      for (let c = 0; c < C; c++) {
        iv[c] = 1 / Math.sqrt(vv[c]! + a.eps);
        if (rm && rv) {
          rm[c] = (1 - a.momentum) * rm[c]! + a.momentum * mv[c]!;
          rv[c] = (1 - a.momentum) * rv[c]! + a.momentum * ((vv[c]! * count) / (count - 1));
        }
      }
      variance.dispose();
      a.runningMean?.bumpVersion();
      a.runningVar?.bumpVersion();
    } else {
      const rm = floats(a.runningMean ?? null), rv = floats(a.runningVar ?? null);
      if (!rm || !rv) throw new Error('batchnorm: evaluation mode needs running statistics');
      const mv = mean.data() as FloatArray, iv = invStd.data() as FloatArray;
      for (let c = 0; c < C; c++) {
        mv[c] = rm[c]!;
        iv[c] = 1 / Math.sqrt(rv[c]! + a.eps);
      }
    }
    // y = (x - mean) * (invStd * gamma) + beta
    const scale = Tensor.uninitialized([C], x!.dtype, 'workspace'), shift = Tensor.uninitialized([C], x!.dtype, 'workspace');
    const iv = invStd.data() as FloatArray, gv = floats(gamma), bv = floats(beta), sv = scale.data() as FloatArray, hv = shift.data() as FloatArray;
    for (let c = 0; c < C; c++) {
      sv[c] = iv[c]! * (gv ? gv[c]! : 1);
      hv[c] = bv ? bv[c]! : 0;
    }
    const y = Tensor.uninitialized(x!.shape, x!.dtype);
    k.channelAffine(xc, y, { mean, scale, shift }, layout);
    scale.dispose();
    shift.dispose();
    saveForNormGrad(ctx, x!, gamma, mean, invStd);
    if (xc !== x) xc.dispose();
    return [y];
  },
  backward(ctx, [gy], a) {
    const gamma = ctx.node.slots.has('gamma') ? ctx.saved('gamma') : null;
    return runOp(normGradOp, [gy!, ctx.saved('x'), ctx.saved('mean'), ctx.saved('invStd'), gamma], { kind: 'batch', training: a.training });
  },
  samples: () => [
    { inputs: [{ shape: [4, 3, 2, 2] }, { shape: [3] }, { shape: [3] }], attrs: { training: true, momentum: 0.1, eps: 1e-5 }, label: 'train NCHW' },
    { inputs: [{ shape: [5, 3] }, { shape: [3] }, null], attrs: { training: true, momentum: 0.1, eps: 1e-5 }, label: 'train NC' },
  ],
});

const layerNormOp = defineOp<LayerNormAttrs>({
  name: 'layernorm',
  secondOrder: false,
  inputs: ['x', 'gamma?', 'beta?'],
  saves: { x: 'input', gamma: 'input', mean: 'stats', invStd: 'stats' },
  infer: ([x, gamma, beta]) => {
    const D = x!.shape[x!.shape.length - 1];
    if (D === undefined) throw new ShapeError('layernorm', 'input must have rank >= 1');
    checkAffine('layernorm', x!, gamma, D, 'gamma');
    checkAffine('layernorm', x!, beta, D, 'beta');
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x, gamma, beta], a) {
    const D = x!.shape[x!.rank - 1]!, rows = x!.size / Math.max(1, D);
    const xc = contiguous(x!);
    const xv = xc.data() as FloatArray;
    const mean = Tensor.empty([rows], x!.dtype), invStd = Tensor.empty([rows], x!.dtype);
    const mv = mean.data() as FloatArray, iv = invStd.data() as FloatArray;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += xv[r * D + d]!;
      const m = s / D;
      let q = 0;
      for (let d = 0; d < D; d++) q += (xv[r * D + d]! - m) ** 2;
      mv[r] = m;
      iv[r] = 1 / Math.sqrt(q / D + a.eps);
    }
    const y = Tensor.empty(x!.shape, x!.dtype);
    normalize(xv, y.data() as FloatArray, mv, iv, floats(gamma), floats(beta), rows, D, 1, true);
    saveForNormGrad(ctx, x!, gamma, mean, invStd);
    if (xc !== x) xc.dispose();
    return [y];
  },
  backward(ctx, [gy]) {
    const gamma = ctx.node.slots.has('gamma') ? ctx.saved('gamma') : null;
    return runOp(normGradOp, [gy!, ctx.saved('x'), ctx.saved('mean'), ctx.saved('invStd'), gamma], { kind: 'layer', training: true });
  },
  samples: () => [
    { inputs: [{ shape: [3, 4, 6] }, { shape: [6] }, { shape: [6] }], attrs: { eps: 1e-5 }, label: 'affine' },
    { inputs: [{ shape: [5, 4] }, null, null], attrs: { eps: 1e-5 }, label: 'plain' },
  ],
});

/**
 * Gradients of batch/layer norm: [dx, dgamma, dbeta]. With xhat = (x - mean) * invStd and
 * statistics over M elements, dx = invStd * (gy*gamma - mean(gy*gamma) - xhat * mean(gy*gamma*xhat))
 * when the statistics were computed from x (training), and dx = gy * gamma * invStd otherwise.
 */
const normGradOp = defineOp<{ kind: 'batch' | 'layer'; training: boolean }>({
  name: 'norm_grad',
  inputs: ['gy', 'x', 'mean', 'invStd', 'gamma?'],
  saves: {},
  infer: ([gy, x], a) => {
    const C = a.kind === 'layer' ? x!.shape[x!.shape.length - 1]! : x!.shape[1]!;
    return [
      { shape: x!.shape, dtype: gy!.dtype },
      { shape: [C], dtype: gy!.dtype },
      { shape: [C], dtype: gy!.dtype },
    ];
  },
  forward(_ctx, [gy, x, mean, invStd, gamma], a) {
    if (a.kind === 'batch') return batchNormGrad(gy!, x!, mean!, invStd!, gamma ?? null, a.training);
    return layerNormGrad(gy!, x!, mean!, invStd!, gamma ?? null);
  },
});

/** [dx, dgamma, dbeta] of layer norm: statistics per row of D = last-axis values. */
function layerNormGrad(gy: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, gamma: Tensor | null): Tensor[] {
  const D = x.shape[x.rank - 1]!, rows = x.size / D;
  const gc = contiguous(gy), xc = contiguous(x);
  const dx = Tensor.empty(x.shape, gy.dtype), dgamma = Tensor.empty([D], gy.dtype), dbeta = Tensor.empty([D], gy.dtype);
  const g = gc.data() as FloatArray, xv = xc.data() as FloatArray, dxv = dx.data() as FloatArray;
  const mv = mean.data() as FloatArray, iv = invStd.data() as FloatArray, gam = floats(gamma);
  const dgv = new Float64Array(D), dbv = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    // Sums of gy*gamma and gy*gamma*xhat over the row.
    let s1 = 0, s2 = 0;
    for (let d = 0, b = r * D; d < D; d++) {
      const xhat = (xv[b + d]! - mv[r]!) * iv[r]!;
      const gi = g[b + d]!, gm = gam ? gam[d]! : 1;
      s1 += gi * gm;
      s2 += gi * gm * xhat;
      dgv[d]! += gi * xhat;
      dbv[d]! += gi;
    }
    for (let d = 0, b = r * D; d < D; d++) {
      const xhat = (xv[b + d]! - mv[r]!) * iv[r]!;
      dxv[b + d] = iv[r]! * (g[b + d]! * (gam ? gam[d]! : 1) - s1 / D - (xhat * s2) / D);
    }
  }
  (dgamma.data() as FloatArray).set(dgv);
  (dbeta.data() as FloatArray).set(dbv);
  if (gc !== gy) gc.dispose();
  if (xc !== x) xc.dispose();
  return [dx, dgamma, dbeta];
}

/**
 * [dx, dgamma, dbeta] of batch norm on the backend's kernels: per-channel sums, then dx as one
 * per-channel affine map of (gy, x): dx = gy * (invStd*gamma) + (x - mean) * (-invStd^2 * gamma * S2 / M) - invStd * gamma * S1 / M
 * with S1 = sum gy, S2 = sum gy * xhat over the M = N*H*W values of a channel (training; else only the first term).
 */
function batchNormGrad(gy: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, gamma: Tensor | null, training: boolean): Tensor[] {
  const layout = channelLayout(x);
  const C = layout.channels, M = layout.outer * layout.inner, dtype = gy.dtype;
  const k = kernels(dtype);
  const gc = contiguous(gy), xc = contiguous(x);
  const dgamma = Tensor.uninitialized([C], dtype), dbeta = Tensor.uninitialized([C], dtype);
  k.channelGradSums(gc, xc, mean, invStd, dbeta, dgamma, layout);
  const uScale = Tensor.uninitialized([C], dtype, 'workspace'), scale = Tensor.uninitialized([C], dtype, 'workspace'), shift = Tensor.uninitialized([C], dtype, 'workspace');
  const iv = invStd.data() as FloatArray, gm = floats(gamma), s1 = dbeta.data() as FloatArray, s2 = dgamma.data() as FloatArray;
  const uv = uScale.data() as FloatArray, sv = scale.data() as FloatArray, hv = shift.data() as FloatArray;
  for (let c = 0; c < C; c++) {
    const a = iv[c]! * (gm ? gm[c]! : 1);
    uv[c] = a;
    sv[c] = training ? (-a * iv[c]! * s2[c]!) / M : 0;
    hv[c] = training ? (-a * s1[c]!) / M : 0;
  }
  const dx = Tensor.uninitialized(x.shape, dtype);
  k.channelAffine(xc, dx, { mean, scale, shift, u: gc, uScale }, layout);
  for (const t of [uScale, scale, shift]) t.dispose();
  if (gc !== gy) gc.dispose();
  if (xc !== x) xc.dispose();
  return [dx, dgamma, dbeta];
}

/** Batch normalization over [N, C, ...]: statistics per channel. */
export function batchNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, attrs: BatchNormAttrs): Tensor {
  return runOp(batchNormOp, [x, gamma, beta], attrs)[0]!;
}

/** Layer normalization over the last axis. */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  return runOp(layerNormOp, [x, gamma, beta], { eps })[0]!;
}
