/**
 * Batch and layer normalization. Both save their input plus float statistics (mean, inverse
 * standard deviation), and gamma (a parameter: never counted or compressed); the normalized
 * value is recomputed in backward.
 *
 * Both run on the per-channel kernels. Batch norm views x as [N, C, rest]: statistics and gamma
 * per channel. Layer norm views x as [1, rows, D]: statistics per row (a "channel" of D values),
 * gamma per d (applied with the binary kernel, which repeats a row).
 */
import type { FloatArray } from '../core/dtype.js';
import { fmt, ShapeError } from '../core/shape.js';
import { donate, reuseDonated, Tensor } from '../core/tensor.js';
import { isGradEnabled } from '../autograd/mode.js';
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


/** Layer norm's view of x: one "channel" per row of the last axis. */
function rowLayout(x: TensorMeta): ChannelLayout {
  const D = x.shape[x.shape.length - 1]!;
  return { outer: 1, channels: D === 0 ? 0 : x.shape.reduce((p, d) => p * d, 1) / D, inner: D };
}

/** invStd = 1 / sqrt(variance + eps), per statistic. */
function inverseStd(variance: Tensor, eps: number, invStd: Tensor): void {
  const vv = variance.data() as FloatArray, iv = invStd.data() as FloatArray;
  for (let c = 0; c < vv.length; c++) iv[c] = 1 / Math.sqrt(vv[c]! + eps);
}

/** Saves what the gradient op reads; the statistics tensors then belong to their slots. */
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
      const mv = mean.data() as FloatArray, vv = variance.data() as FloatArray;
      const rm = floats(a.runningMean ?? null), rv = floats(a.runningVar ?? null);
      inverseStd(variance, a.eps, invStd);
      for (let c = 0; c < C; c++) {
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
    // x is read back for this op alone: an unpacked (decompressed) copy can take dx in place.
    const x = ctx.saved('x');
    return runOp(batchNormGradOp, [gy!, isGradEnabled() ? x : donate(x), ctx.saved('mean'), ctx.saved('invStd'), gamma], { training: a.training });
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
  // Statistics per row: a row's quantization range should not widen another's.
  saves: { x: { role: 'input', group: 'row' }, gamma: 'input', mean: 'stats', invStd: 'stats' },
  infer: ([x, gamma, beta]) => {
    const D = x!.shape[x!.shape.length - 1];
    if (D === undefined) throw new ShapeError('layernorm', 'input must have rank >= 1');
    checkAffine('layernorm', x!, gamma, D, 'gamma');
    checkAffine('layernorm', x!, beta, D, 'beta');
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x, gamma, beta], a) {
    const layout = rowLayout(x!), rows = layout.channels;
    const k = kernels(x!.dtype);
    const xc = contiguous(x!);
    const mean = Tensor.uninitialized([rows], x!.dtype), invStd = Tensor.uninitialized([rows], x!.dtype);
    const variance = Tensor.uninitialized([rows], x!.dtype, 'workspace'), zero = Tensor.empty([rows], x!.dtype, 'workspace');
    k.channelMoments(xc, mean, variance, layout);
    inverseStd(variance, a.eps, invStd);
    // y = (x - mean) * invStd, then * gamma + beta along the last axis.
    const y = Tensor.uninitialized(x!.shape, x!.dtype);
    k.channelAffine(xc, y, { mean, scale: invStd, shift: zero }, layout);
    for (const [op, p] of [['mul', gamma], ['add', beta]] as const) {
      if (!p) continue;
      const pc = contiguous(p);
      k.binary(op, y, pc, y);
      if (pc !== p) pc.dispose();
    }
    variance.dispose();
    zero.dispose();
    saveForNormGrad(ctx, x!, gamma, mean, invStd);
    if (xc !== x) xc.dispose();
    return [y];
  },
  backward(ctx, [gy]) {
    const gamma = ctx.node.slots.has('gamma') ? ctx.saved('gamma') : null;
    return runOp(layerNormGradOp, [gy!, ctx.saved('x'), ctx.saved('mean'), ctx.saved('invStd'), gamma], { training: true });
  },
  samples: () => [
    { inputs: [{ shape: [3, 4, 6] }, { shape: [6] }, { shape: [6] }], attrs: { eps: 1e-5 }, label: 'affine' },
    { inputs: [{ shape: [5, 4] }, null, null], attrs: { eps: 1e-5 }, label: 'plain' },
  ],
});

/**
 * The gradient op of a normalization: [dx, dgamma, dbeta] from (gy, x, mean, invStd, gamma?).
 * With xhat = (x - mean) * invStd and statistics over M elements, dx = invStd * (gy*gamma -
 * mean(gy*gamma) - xhat * mean(gy*gamma*xhat)) when the statistics were computed from x
 * (training), and dx = gy * gamma * invStd otherwise.
 */
function defineNormGrad(name: string, params: (x: TensorMeta) => number, grad: (gy: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, gamma: Tensor | null, training: boolean) => Tensor[]) {
  return defineOp<{ training: boolean }>({
    name,
    inputs: ['gy', 'x', 'mean', 'invStd', 'gamma?'],
    saves: {},
    infer: ([gy, x]) => [
      { shape: x!.shape, dtype: gy!.dtype },
      { shape: [params(x!)], dtype: gy!.dtype },
      { shape: [params(x!)], dtype: gy!.dtype },
    ],
    forward: (_ctx, [gy, x, mean, invStd, gamma], a) => grad(gy!, x!, mean!, invStd!, gamma ?? null, a.training),
  });
}

/**
 * dx as one per-statistic affine map of (g, x) from the sums S1 = sum g, S2 = sum g * xhat over
 * the M values of each statistic, with a = invStd * gamma (gamma per statistic, or null):
 * dx = g * a + (x - mean) * (-a * invStd * S2 / M) - a * S1 / M (training; else only the first term).
 */
function normDx(g: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, gamma: Tensor | null, s1: Tensor, s2: Tensor, layout: ChannelLayout, training: boolean, out: Tensor | null = null): Tensor {
  const C = layout.channels, M = layout.outer * layout.inner, dtype = g.dtype;
  const uScale = Tensor.uninitialized([C], dtype, 'workspace'), scale = Tensor.uninitialized([C], dtype, 'workspace'), shift = Tensor.uninitialized([C], dtype, 'workspace');
  const iv = invStd.data() as FloatArray, gm = floats(gamma), sv1 = s1.data() as FloatArray, sv2 = s2.data() as FloatArray;
  const uv = uScale.data() as FloatArray, sv = scale.data() as FloatArray, hv = shift.data() as FloatArray;
  for (let c = 0; c < C; c++) {
    const a = iv[c]! * (gm ? gm[c]! : 1);
    uv[c] = a;
    sv[c] = training ? (-a * iv[c]! * sv2[c]!) / M : 0;
    hv[c] = training ? (-a * sv1[c]!) / M : 0;
  }
  const dx = out ?? Tensor.uninitialized(x.shape, dtype);
  kernels(dtype).channelAffine(x, dx, { mean, scale, shift, u: g, uScale }, layout);
  for (const t of [uScale, scale, shift]) t.dispose();
  return dx;
}

/** [dx, dgamma, dbeta] of batch norm: per-channel sums (which are dbeta and dgamma), then dx. */
const batchNormGradOp = defineNormGrad('batchnorm_grad', (x) => x.shape[1]!, (gy, x, mean, invStd, gamma, training) => {
  const layout = channelLayout(x), C = layout.channels, dtype = gy.dtype;
  const gc = contiguous(gy), xc = contiguous(x);
  const dgamma = Tensor.uninitialized([C], dtype), dbeta = Tensor.uninitialized([C], dtype);
  kernels(dtype).channelGradSums(gc, xc, mean, invStd, dbeta, dgamma, layout);
  // channelAffine is elementwise, so dx may overwrite a donated x (the last read of x).
  const dx = normDx(gc, xc, mean, invStd, gamma, dbeta, dgamma, layout, training, reuseDonated(xc, dtype));
  if (gc !== gy) gc.dispose();
  if (xc !== x) xc.dispose();
  return [dx, dgamma, dbeta];
});

/**
 * [dx, dgamma, dbeta] of layer norm: statistics per row, gamma per d. gy * gamma goes through the
 * row sums and the affine map; dgamma and dbeta are column sums of gy * xhat and gy.
 */
const layerNormGradOp = defineNormGrad('layernorm_grad', (x) => x.shape[x.shape.length - 1]!, (gy, x, mean, invStd, gamma) => {
  const layout = rowLayout(x), rows = layout.channels, D = layout.inner, dtype = gy.dtype;
  const k = kernels(dtype);
  const gc = contiguous(gy), xc = contiguous(x);
  const gg = gamma ? Tensor.uninitialized(x.shape, dtype, 'workspace') : gc;
  if (gamma) k.binary('mul', gc, gamma, gg);
  const s1 = Tensor.uninitialized([rows], dtype, 'workspace'), s2 = Tensor.uninitialized([rows], dtype, 'workspace');
  k.channelGradSums(gg, xc, mean, invStd, s1, s2, layout);
  const dx = normDx(gg, xc, mean, invStd, null, s1, s2, layout, true);
  // xhat * gy, summed over rows; gy summed over rows.
  const zero = Tensor.empty([rows], dtype, 'workspace'), gxhat = Tensor.uninitialized(x.shape, dtype, 'workspace');
  k.channelAffine(xc, gxhat, { mean, scale: invStd, shift: zero }, layout);
  k.binary('mul', gxhat, gc, gxhat);
  const dgamma = Tensor.uninitialized([D], dtype), dbeta = Tensor.uninitialized([D], dtype);
  const columns = { outer: 1, reduced: rows, inner: D };
  k.reduce('sum', gxhat, dgamma, columns, null);
  k.reduce('sum', gc, dbeta, columns, null);
  for (const t of [s1, s2, zero, gxhat]) t.dispose();
  if (gg !== gc) gg.dispose();
  if (gc !== gy) gc.dispose();
  if (xc !== x) xc.dispose();
  return [dx, dgamma, dbeta];
});

/** Batch normalization over [N, C, ...]: statistics per channel. */
export function batchNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, attrs: BatchNormAttrs): Tensor {
  return runOp(batchNormOp, [x, gamma, beta], attrs)[0]!;
}

/** Layer normalization over the last axis. */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  return runOp(layerNormOp, [x, gamma, beta], { eps })[0]!;
}
