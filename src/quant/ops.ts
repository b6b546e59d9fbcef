/**
 * The quantizer ops: one elementwise "fake quantization" op whose forward maps floats to a small
 * discrete set (still stored as floats) and whose backward is a pseudo-gradient (STE or a smooth
 * surrogate), plus the non-differentiable op that evaluates that pseudo-gradient. Per-channel
 * scales (mean|W|, TWN alpha) are stop-gradient constants applied outside, by the quantizers.
 */
import type { FloatArray } from '../core/dtype.js';
import { fmt, ShapeError } from '../core/shape.js';
import { fromValues, Tensor } from '../core/tensor.js';
import { contiguous, mul } from '../ops/elementwise.js';
import { reshape } from '../ops/movement.js';
import { sum } from '../ops/reduce.js';
import { defineOp, runOp, type OpSample, type TensorMeta } from '../ops/registry.js';
import { kernels } from '../backends/index.js';

export { roundHalfAway } from './kernels.js';
export { nestedCode } from './nested-code.js';

/** The elementwise maps; `p` is the learned scalar (PACT alpha, LSQ step) where there is one. */
export type FakeQuantAttrs =
  | { kind: 'sign'; clip: number | null }
  | { kind: 'approx_sign' }
  | { kind: 'swish_sign'; beta: number }
  | { kind: 'heaviside'; clip: number | null }
  | { kind: 'tern'; threshold: number; clip: number | null }
  | { kind: 'dorefa_act'; levels: number }
  | { kind: 'dorefa_weight'; levels: number; maxTanh: number }
  | { kind: 'pact'; levels: number }
  | { kind: 'lsq'; qn: number; qp: number; gradScale: number }
  /** IR-Net error-decay estimator: sign forward, gradient k·t·(1 − tanh²(t·x)). */
  | { kind: 'ede'; t: number; k: number }
  /**
   * DIR-Net's distribution-sensitive two-stage estimator (our re-implementation): sign forward;
   * stage 1 gradient 1[|x| ≤ width·σ] (identity-like), stage 2 k·t·(1 − tanh²(t·x/σ)), σ the
   * tensor's standard deviation.
   */
  | { kind: 'dte'; stage: 1 | 2; width: number; t: number; k: number; sigma: number }
  /** FDA-BNN: sign forward, gradient of the n-term Fourier series (4ω/π)·Σ cos((2i+1)ωx) for |x| ≤ 1, else 0. */
  | { kind: 'fourier'; omega: number; terms: number }
  /** Nested precision (vertical layers): the 8-bit code of x (x already divided by the step), `drop` low bits dropped. */
  | { kind: 'nested'; drop: number }
  /**
   * TTQ, one half each (q = ttq_pos(x; W_p) + ttq_neg(x; W_n)): ttq_pos is W_p where x ≥ Δ (else 0),
   * gradient W_p there, 1 where |x| < Δ (the zero region's straight-through), 0 below; ttq_neg is
   * −W_n where x ≤ −Δ, gradient W_n there. ∂/∂W_p = 1[x ≥ Δ], ∂/∂W_n = −1[x ≤ −Δ].
   */
  | { kind: 'ttq_pos'; threshold: number }
  | { kind: 'ttq_neg'; threshold: number }
  /**
   * Pruned ternary codes: sign(x) where |x| ≥ Δ, else 0; the refined straight-through gradient is 1
   * on survivors and |x|/Δ on pruned weights (continuous at Δ, fading toward 0).
   */
  | { kind: 'pruned_tern'; threshold: number };

/** Whether each map has a learned scalar input p (PACT alpha, LSQ step, TTQ scale); every kind is listed. */
const LEARNED: Record<FakeQuantAttrs['kind'], boolean> = {
  sign: false, approx_sign: false, swish_sign: false, heaviside: false, tern: false, dorefa_act: false, dorefa_weight: false,
  pact: true, lsq: true, ede: false, dte: false, fourier: false, nested: false, ttq_pos: true, ttq_neg: true, pruned_tern: false,
};

const learned = (a: FakeQuantAttrs): boolean => LEARNED[a.kind];

function inferFakeQuant(op: string, [x, p, g]: readonly (TensorMeta | null)[], a: FakeQuantAttrs): TensorMeta {
  if (!Object.hasOwn(LEARNED, a.kind)) throw new ShapeError(op, `unknown quantizer kind '${(a as { kind: string }).kind}'`);
  if (x!.dtype !== 'float32' && x!.dtype !== 'float64') throw new ShapeError(op, `expects a float tensor, got ${x!.dtype}`);
  if (learned(a) !== (p !== null)) {
    throw new ShapeError(op, `'${a.kind}' ${learned(a) ? 'needs' : 'takes no'} learned parameter input`);
  }
  if (p && (p.shape.length !== 1 || p.shape[0] !== 1 || p.dtype !== x!.dtype)) {
    throw new ShapeError(op, `parameter of '${a.kind}' must be a [1] ${x!.dtype} tensor, got ${fmt(p.shape)} ${p.dtype}`);
  }
  if (g && (g.dtype !== x!.dtype || g.shape.join() !== x!.shape.join())) {
    throw new ShapeError(op, `gradient must be ${x!.dtype} ${fmt(x!.shape)}, got ${g.dtype} ${fmt(g.shape)}`);
  }
  return { shape: x!.shape, dtype: x!.dtype };
}

/** Runs `body` on contiguous copies of the tensors (the kernels' layout), disposing the copies made. */
function onContiguous<R>(ts: readonly (Tensor | null)[], body: (cs: (Tensor | null)[]) => R): R {
  const cs = ts.map((t) => (t ? contiguous(t) : null));
  try {
    return body(cs);
  } finally {
    cs.forEach((c, i) => c !== ts[i] && c?.dispose());
  }
}

const quantGradOp = defineOp<FakeQuantAttrs & { wrt: 'x' | 'p' | 'both' }>({
  name: 'fake_quant_grad',
  inputs: ['x', 'p?', 'g?'],
  saves: {},
  infer: (metas, a) => {
    const meta = inferFakeQuant('fake_quant_grad', metas, a);
    return a.wrt === 'both' ? [meta, meta] : [meta];
  },
  forward(_ctx, [x, p, g], { wrt, ...a }) {
    const gx = wrt !== 'p' ? Tensor.uninitialized(x!.shape, x!.dtype) : null;
    const gp = wrt !== 'x' ? Tensor.uninitialized(x!.shape, x!.dtype) : null;
    const param = p ? p.values()[0]! : 0;
    onContiguous([x, g], ([xc, gc]) => kernels(x!.dtype).fakeQuantGrad(xc!, gc, gx, gp, a as FakeQuantAttrs, param));
    return [gx, gp].filter((t) => t !== null);
  },
});

/**
 * The pseudo-gradient ∂q/∂x (wrt 'x') or ∂q/∂p (wrt 'p'), elementwise, times `g` when given (one
 * kernel pass: the backward of fakeQuant); not differentiable.
 */
export function fakeQuantGrad(x: Tensor, p: Tensor | null, attrs: FakeQuantAttrs, wrt: 'x' | 'p' = 'x', g: Tensor | null = null): Tensor {
  return runOp(quantGradOp, [x, p, g], { ...attrs, wrt })[0]!;
}

const sample = (attrs: FakeQuantAttrs, param?: number): OpSample => ({
  inputs: [{ shape: [3, 4], awayFromZero: 0.05 }, param === undefined ? null : { shape: [1], values: () => [param] }],
  attrs,
  label: attrs.kind,
});

const fakeQuantOp = defineOp<FakeQuantAttrs>({
  name: 'fake_quant',
  inputs: ['x', 'p?'],
  saves: { x: 'input', p: 'input' },
  differentiable: [true, true],
  straightThrough: true,
  // A pseudo-gradient has no defined derivative of its own: createGraph through it is an error.
  secondOrder: false,
  infer: (metas, a) => [inferFakeQuant('fake_quant', metas, a)],
  forward(ctx, [x, p], a) {
    ctx.save('x', x!);
    if (p) ctx.save('p', p);
    const out = Tensor.uninitialized(x!.shape, x!.dtype);
    onContiguous([x], ([xc]) => kernels(x!.dtype).fakeQuant(xc!, out, a, p ? p.values()[0]! : 0));
    return [out];
  },
  backward(ctx, [g], a) {
    const x = ctx.saved('x');
    const p = learned(a) ? ctx.saved('p') : null;
    const wantX = ctx.needsInputGrad[0], wantP = p !== null && ctx.needsInputGrad[1];
    if (!wantP) return [wantX ? fakeQuantGrad(x, p, a, 'x', g) : null, null];
    // One kernel pass for both: g·∂q/∂x, and g·∂q/∂p summed to the scalar's gradient.
    const [gx, gpElements] = wantX ? runOp(quantGradOp, [x, p, g!], { ...a, wrt: 'both' }) : [null, fakeQuantGrad(x, p, a, 'p', g)];
    const gp = reshape(sum(gpElements!), [1]);
    gpElements!.dispose();
    return [gx ?? null, gp];
  },
  // Used by the registry-wide "every op with a backward has samples" test; finite differences
  // skip this op (straightThrough), test/quant/quantizers.test.ts checks the closed forms.
  samples: () => [
    sample({ kind: 'sign', clip: 1 }),
    sample({ kind: 'nested', drop: 5 }),
    sample({ kind: 'pact', levels: 15 }, 2),
    sample({ kind: 'lsq', qn: 128, qp: 127, gradScale: 1 }, 0.05),
  ],
});

const sinOp: ReturnType<typeof defineOp<{ phase: number }>> = defineOp<{ phase: number }>({
  name: 'sin',
  inputs: ['x'],
  saves: { x: 'input' },
  infer: ([x]) => {
    if (x!.dtype !== 'float32' && x!.dtype !== 'float64') throw new ShapeError('sin', `expects a float tensor, got ${x!.dtype}`);
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x], a) {
    ctx.save('x', x!);
    const out = Tensor.uninitialized(x!.shape, x!.dtype);
    onContiguous([x], ([xc]) => kernels(x!.dtype).sin(xc!, out, a.phase));
    return [out];
  },
  // d/dx sin(x + φ) = sin(x + φ + π/2).
  backward: (ctx, [g], a) => [mul(g!, sin(ctx.saved('x'), a.phase + Math.PI / 2))],
  samples: () => [{ inputs: [{ shape: [3, 4] }], attrs: { phase: 0 }, label: 'sin' }, { inputs: [{ shape: [2, 3] }], attrs: { phase: 1 }, label: 'phase 1' }],
});

/**
 * sin(x + phase), elementwise and differentiable (FDA-BNN's noise-adaptation skip 0.1·sin(x)).
 *
 * @example
 * sin(fromValues([0, Math.PI / 2], [2]));   // [0, 1]
 */
export function sin(x: Tensor, phase = 0): Tensor {
  return runOp(sinOp, [x], { phase })[0]!;
}

/** Fake quantization with its pseudo-gradient: `p` is the learned scalar for 'pact' and 'lsq'. */
export function fakeQuant(x: Tensor, attrs: FakeQuantAttrs, p: Tensor | null = null): Tensor {
  return runOp(fakeQuantOp, [x, p], attrs)[0]!;
}

/** SBNN weights: the code threshold θ and the straight-through clip of the latent weights. */
export interface SbnnAttrs {
  theta: number;
  clip: number;
}

function inferSbnn([w, tau, phi]: readonly (TensorMeta | null)[]): TensorMeta[] {
  if (w!.dtype !== 'float32' && w!.dtype !== 'float64') throw new ShapeError('sbnn_weight', `expects a float tensor, got ${w!.dtype}`);
  for (const [name, p] of [['tau', tau], ['phi', phi]] as const) {
    if (p!.shape.length !== 1 || p!.shape[0] !== 1 || p!.dtype !== w!.dtype) throw new ShapeError('sbnn_weight', `${name} must be a [1] ${w!.dtype} tensor, got ${fmt(p!.shape)} ${p!.dtype}`);
  }
  return [{ shape: w!.shape, dtype: w!.dtype }];
}

const sbnnOp = defineOp<SbnnAttrs>({
  name: 'sbnn_weight',
  inputs: ['w', 'tau', 'phi'],
  saves: { w: 'input', tau: 'input' },
  straightThrough: true,
  secondOrder: false,
  infer: (metas) => inferSbnn(metas),
  forward(ctx, [w, tau, phi], { theta }) {
    ctx.save('w', w!);
    ctx.save('tau', tau!);
    const out = Tensor.uninitialized(w!.shape, w!.dtype), o = out.data() as FloatArray;
    const t = tau!.values()[0]!, f = phi!.values()[0]!, hi = t + f, lo = f - t;
    onContiguous([w], ([wc]) => {
      const v = wc!.data() as FloatArray;
      for (let i = 0; i < o.length; i++) o[i] = v[i]! - theta >= 0 ? hi : lo;
    });
    return [out];
  },
  // One pass: g·τ·1[|w − θ| ≤ clip] for w, Σ g·sign(w − θ) for τ, Σ g for φ.
  backward(ctx, [g], { theta, clip }) {
    const w = ctx.saved('w'), t = ctx.saved('tau').values()[0]!, dtype = w.dtype;
    const gw = ctx.needsInputGrad[0] ? Tensor.uninitialized(w.shape, dtype) : null, o = gw?.data() as FloatArray | undefined;
    let gt = 0, gp = 0;
    onContiguous([w, g!], ([wc, gc]) => {
      const v = wc!.data() as FloatArray, d = gc!.data() as FloatArray;
      for (let i = 0; i < d.length; i++) {
        const gi = d[i]!, x = v[i]! - theta;
        gt += x >= 0 ? gi : -gi;
        gp += gi;
        if (o) o[i] = Math.abs(x) <= clip ? gi * t : 0;
      }
    });
    return [gw, ctx.needsInputGrad[1] ? fromValues([gt], [1], dtype) : null, ctx.needsInputGrad[2] ? fromValues([gp], [1], dtype) : null];
  },
  samples: () => [{ inputs: [{ shape: [3, 4], awayFromZero: 0.05 }, { shape: [1], values: () => [0.4] }, { shape: [1], values: () => [0.3] }], attrs: { theta: 0, clip: 1 }, label: 'sbnn_weight' }],
});

/**
 * SBNN's weights τ·sign(w − θ) + φ (sign(0) = +1) for learned [1] scalars τ and φ, in one pass;
 * backward (straight-through, one pass): g·τ·1[|w − θ| ≤ clip] for w, Σ g·sign(w − θ) for τ and
 * Σ g for φ.
 *
 * @example
 * sbnnWeight(fromValues([0.9, -0.2], [2]), fromValues([0.5], [1]), fromValues([0.5], [1]), { theta: 0.5, clip: 1 });   // [1, 0]
 */
export function sbnnWeight(w: Tensor, tau: Tensor, phi: Tensor, attrs: SbnnAttrs): Tensor {
  return runOp(sbnnOp, [w, tau, phi], attrs)[0]!;
}
