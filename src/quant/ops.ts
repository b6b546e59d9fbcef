/**
 * The quantizer ops: one elementwise "fake quantization" op whose forward maps floats to a small
 * discrete set (still stored as floats) and whose backward is a pseudo-gradient (STE or a smooth
 * surrogate), plus the non-differentiable op that evaluates that pseudo-gradient. Per-channel
 * scales (mean|W|, TWN alpha) are stop-gradient constants applied outside, by the quantizers.
 */
import type { FloatArray } from '../core/dtype.js';
import { fmt, ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { contiguous, mul } from '../ops/elementwise.js';
import { reshape } from '../ops/movement.js';
import { sum } from '../ops/reduce.js';
import { defineOp, runOp, type OpSample, type TensorMeta } from '../ops/registry.js';

export { roundHalfAway } from './kernels.js';
import { roundHalfAway } from './kernels.js';

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

interface Elementwise {
  forward(x: number, a: any, p: number): number;
  /** ∂q/∂x (the pseudo-gradient). */
  dx(x: number, a: any, p: number): number;
  /** ∂q/∂p for the learned scalar. */
  dp?(x: number, a: any, p: number): number;
}

/**
 * The nested-precision code of u (a weight divided by its 8-bit step): q8 = clamp(round(u), −128,
 * 127); reading b bits drops d = 8 − b low bits, q_b = ⌊q8 / 2^d⌋ (cascade downsampling), and the
 * code stands for the centre of the 2^d codes it covers, 2^d·q_b + 2^(d−1) (d ≥ 1), so the levels
 * stay symmetric. d = 0 gives q8 itself. Every result fits in int8.
 *
 * @example
 * nestedCode(100.4, 0);   // 100 (the stored 8-bit code)
 * nestedCode(100, 6);     // 96 = 64·⌊100/64⌋ + 32 (the 2-bit read)
 */
export function nestedCode(u: number, drop: number): number {
  const q = Math.min(127, Math.max(-128, roundHalfAway(u))) + 0; // + 0: no −0 codes
  if (drop === 0) return q;
  const step = 2 ** drop;
  return Math.floor(q / step) * step + step / 2;
}

const inClip = (x: number, clip: number | null): number => (clip === null || Math.abs(x) <= clip ? 1 : 0);
/** +1 for x ≥ 0 (−0 included), else −1 (NaN too); branch-free: signs of activations and weights are near random, a branch mispredicts. */
const sign = (x: number): number => 1 - 2 * +!(x >= 0);
/** The straight-through gradient of sign, heaviside and tern: 1 within the clip, else 0. */
const steGrad = (x: number, a: { clip: number | null }): number => inClip(x, a.clip);

const maps: Record<FakeQuantAttrs['kind'], Elementwise> = {
  sign: { forward: sign, dx: steGrad },
  approx_sign: { forward: sign, dx: (x) => (Math.abs(x) <= 1 ? 2 - 2 * Math.abs(x) : 0) },
  swish_sign: {
    forward: sign,
    dx: (x, a) => {
      const bx = a.beta * x;
      // cosh overflows to Infinity for |bx| > ~710, where the surrogate is 0 anyway.
      return (a.beta * (2 - bx * Math.tanh(bx / 2))) / (1 + Math.cosh(bx));
    },
  },
  heaviside: { forward: (x) => (x > 0 ? 1 : 0), dx: steGrad },
  tern: { forward: (x, a) => (x >= a.threshold ? 1 : x <= -a.threshold ? -1 : 0), dx: steGrad },
  dorefa_act: {
    forward: (x, a) => roundHalfAway(Math.min(1, Math.max(0, x)) * a.levels) / a.levels,
    dx: (x) => (x >= 0 && x <= 1 ? 1 : 0),
  },
  dorefa_weight: {
    forward: (x, a) => (2 * roundHalfAway((Math.tanh(x) / (2 * a.maxTanh) + 0.5) * a.levels)) / a.levels - 1,
    dx: (x, a) => (1 - Math.tanh(x) ** 2) / a.maxTanh,
  },
  pact: {
    forward: (x, a, alpha) => (roundHalfAway((Math.min(alpha, Math.max(0, x)) * a.levels) / alpha) * alpha) / a.levels,
    dx: (x, _a, alpha) => (x >= 0 && x < alpha ? 1 : 0),
    dp: (x, _a, alpha) => (x >= alpha ? 1 : 0),
  },
  ede: { forward: sign, dx: (x, a) => a.k * a.t * (1 - Math.tanh(a.t * x) ** 2) },
  dte: { forward: sign, dx: (x, a) => (a.stage === 1 ? (Math.abs(x) <= a.width * a.sigma ? 1 : 0) : a.k * a.t * (1 - Math.tanh((a.t * x) / a.sigma) ** 2)) },
  fourier: {
    forward: sign,
    dx: (x, a) => {
      if (Math.abs(x) > 1) return 0;
      let s = 0;
      for (let i = 0; i < a.terms; i++) s += Math.cos((2 * i + 1) * a.omega * x);
      return (4 * a.omega / Math.PI) * s;
    },
  },
  nested: { forward: (u, a) => nestedCode(u, a.drop), dx: (u) => (Math.abs(u) <= 128 ? 1 : 0) },
  ttq_pos: {
    forward: (x, a, wp) => (x >= a.threshold ? wp : 0),
    dx: (x, a, wp) => (x >= a.threshold ? wp : x > -a.threshold ? 1 : 0),
    dp: (x, a) => (x >= a.threshold ? 1 : 0),
  },
  ttq_neg: {
    forward: (x, a, wn) => (x <= -a.threshold ? -wn : 0),
    dx: (x, a, wn) => (x <= -a.threshold ? wn : 0),
    dp: (x, a) => (x <= -a.threshold ? -1 : 0),
  },
  pruned_tern: {
    forward: (x, a) => (Math.abs(x) >= a.threshold ? sign(x) : 0),
    dx: (x, a) => (Math.abs(x) >= a.threshold ? 1 : Math.abs(x) / a.threshold),
  },
  lsq: {
    forward: (v, a, s) => roundHalfAway(Math.min(a.qp, Math.max(-a.qn, v / s))) * s,
    dx: (v, a, s) => (v / s > -a.qn && v / s < a.qp ? 1 : 0),
    dp: (v, a, s) => {
      const r = v / s;
      return (r <= -a.qn ? -a.qn : r >= a.qp ? a.qp : roundHalfAway(r) - r) * a.gradScale;
    },
  },
};

const learned = (a: FakeQuantAttrs): boolean => maps[a.kind].dp !== undefined;

function inferFakeQuant(op: string, [x, p]: readonly (TensorMeta | null)[], a: FakeQuantAttrs): TensorMeta {
  if (!(a.kind in maps)) throw new ShapeError(op, `unknown quantizer kind '${(a as { kind: string }).kind}'`);
  if (x!.dtype !== 'float32' && x!.dtype !== 'float64') throw new ShapeError(op, `expects a float tensor, got ${x!.dtype}`);
  if (learned(a) !== (p !== null)) {
    throw new ShapeError(op, `'${a.kind}' ${learned(a) ? 'needs' : 'takes no'} learned parameter input`);
  }
  if (p && (p.shape.length !== 1 || p.shape[0] !== 1 || p.dtype !== x!.dtype)) {
    throw new ShapeError(op, `parameter of '${a.kind}' must be a [1] ${x!.dtype} tensor, got ${fmt(p.shape)} ${p.dtype}`);
  }
  return { shape: x!.shape, dtype: x!.dtype };
}

function mapElements<A>(x: Tensor, p: Tensor | null, f: (x: number, a: A, p: number) => number, a: A): Tensor {
  const xc = contiguous(x);
  const out = Tensor.empty(x.shape, x.dtype);
  const param = p ? p.values()[0]! : 0;
  const o = out.data() as FloatArray, xv = xc.data() as FloatArray;
  // The binarizers' shared forward and straight-through gradient get loops of their own: a call
  // site that sees one function is inlined (~1 ns per element), the shared one is not (~10 ns).
  if (f === sign) for (let i = 0; i < o.length; i++) o[i] = sign(xv[i]!);
  else if (f === steGrad) for (let i = 0; i < o.length; i++) o[i] = steGrad(xv[i]!, a as { clip: number | null });
  else for (let i = 0; i < o.length; i++) o[i] = f(xv[i]!, a, param);
  if (xc !== x) xc.dispose();
  return out;
}

const quantGradOp = defineOp<FakeQuantAttrs & { wrt: 'x' | 'p' }>({
  name: 'fake_quant_grad',
  inputs: ['x', 'p?'],
  saves: {},
  infer: (metas, a) => [inferFakeQuant('fake_quant_grad', metas, a)],
  forward(_ctx, [x, p], a) {
    const m = maps[a.kind];
    return [mapElements(x!, p, a.wrt === 'x' ? m.dx : m.dp!, a)];
  },
});

/** The pseudo-gradient ∂q/∂x (wrt 'x') or ∂q/∂p (wrt 'p'), elementwise; not differentiable. */
export function fakeQuantGrad(x: Tensor, p: Tensor | null, attrs: FakeQuantAttrs, wrt: 'x' | 'p' = 'x'): Tensor {
  return runOp(quantGradOp, [x, p], { ...attrs, wrt })[0]!;
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
    return [mapElements(x!, p, maps[a.kind].forward, a)];
  },
  backward(ctx, [g], a) {
    const x = ctx.saved('x');
    const p = learned(a) ? ctx.saved('p') : null;
    const gx = ctx.needsInputGrad[0] ? mul(g!, fakeQuantGrad(x, p, a, 'x')) : null;
    const gp = p && ctx.needsInputGrad[1] ? reshape(sum(mul(g!, fakeQuantGrad(x, p, a, 'p'))), [1]) : null;
    return [gx, gp];
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
    return [mapElements(x!, null, (v, b) => Math.sin(v + b.phase), a)];
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
