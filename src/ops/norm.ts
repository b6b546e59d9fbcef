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
    const outer = x!.shape[0]!, C = x!.shape[1]!, inner = x!.size / Math.max(1, outer * C);
    const xc = contiguous(x!);
    const xv = xc.data() as FloatArray;
    const mean = Tensor.empty([C], x!.dtype), invStd = Tensor.empty([C], x!.dtype);
    const mv = mean.data() as FloatArray, iv = invStd.data() as FloatArray;
    const count = outer * inner;
    if (a.training) {
      if (count < 2) throw new ShapeError('batchnorm', `training needs more than one value per channel, got input ${fmt(x!.shape)}`);
      const rm = floats(a.runningMean ?? null), rv = floats(a.runningVar ?? null);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let o = 0; o < outer; o++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) s += xv[b + i]!;
        const m = s / count;
        let q = 0;
        for (let o = 0; o < outer; o++) for (let i = 0, b = (o * C + c) * inner; i < inner; i++) q += (xv[b + i]! - m) ** 2;
        mv[c] = m;
        iv[c] = 1 / Math.sqrt(q / count + a.eps);
        if (rm && rv) {
          rm[c] = (1 - a.momentum) * rm[c]! + a.momentum * m;
          rv[c] = (1 - a.momentum) * rv[c]! + a.momentum * (q / (count - 1));
        }
      }
      a.runningMean?.bumpVersion();
      a.runningVar?.bumpVersion();
    } else {
      const rm = floats(a.runningMean ?? null), rv = floats(a.runningVar ?? null);
      if (!rm || !rv) throw new Error('batchnorm: evaluation mode needs running statistics');
      for (let c = 0; c < C; c++) {
        mv[c] = rm[c]!;
        iv[c] = 1 / Math.sqrt(rv[c]! + a.eps);
      }
    }
    const y = Tensor.empty(x!.shape, x!.dtype);
    normalize(xv, y.data() as FloatArray, mv, iv, floats(gamma), floats(beta), outer, C, inner, false);
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
    const perRow = a.kind === 'layer';
    const C = perRow ? x!.shape[x!.rank - 1]! : x!.shape[1]!;
    const outer = perRow ? x!.size / C : x!.shape[0]!;
    const inner = perRow ? 1 : x!.size / (outer * C);
    const gc = contiguous(gy!), xc = contiguous(x!);
    const g = gc.data() as FloatArray, xv = xc.data() as FloatArray;
    const mv = mean!.data() as FloatArray, iv = invStd!.data() as FloatArray, gam = floats(gamma ?? null);
    const dx = Tensor.empty(x!.shape, gy!.dtype), dgamma = Tensor.empty([C], gy!.dtype), dbeta = Tensor.empty([C], gy!.dtype);
    const dxv = dx.data() as FloatArray;
    const groups = perRow ? outer : C;
    // Per statistics group: sums of gy*gamma and gy*gamma*xhat.
    const s1 = new Float64Array(groups), s2 = new Float64Array(groups);
    const dgv = new Float64Array(C), dbv = new Float64Array(C);
    for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
      const s = perRow ? o : c, gm = gam ? gam[c]! : 1;
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
        const xhat = (xv[b + i]! - mv[s]!) * iv[s]!;
        const gi = g[b + i]!;
        s1[s]! += gi * gm;
        s2[s]! += gi * gm * xhat;
        dgv[c]! += gi * xhat;
        dbv[c]! += gi;
      }
    }
    const M = perRow ? C : outer * inner;
    for (let o = 0; o < outer; o++) for (let c = 0; c < C; c++) {
      const s = perRow ? o : c, gm = gam ? gam[c]! : 1;
      for (let i = 0, b = (o * C + c) * inner; i < inner; i++) {
        const gi = g[b + i]! * gm;
        if (!a.training) dxv[b + i] = gi * iv[s]!;
        else {
          const xhat = (xv[b + i]! - mv[s]!) * iv[s]!;
          dxv[b + i] = iv[s]! * (gi - s1[s]! / M - (xhat * s2[s]!) / M);
        }
      }
    }
    (dgamma.data() as FloatArray).set(dgv);
    (dbeta.data() as FloatArray).set(dbv);
    if (gc !== gy) gc.dispose();
    if (xc !== x) xc.dispose();
    return [dx, dgamma, dbeta];
  },
});

/** Batch normalization over [N, C, ...]: statistics per channel. */
export function batchNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, attrs: BatchNormAttrs): Tensor {
  return runOp(batchNormOp, [x, gamma, beta], attrs)[0]!;
}

/** Layer normalization over the last axis. */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  return runOp(layerNormOp, [x, gamma, beta], { eps })[0]!;
}
