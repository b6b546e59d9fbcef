/**
 * Reference fake-quantization kernels (any float dtype): the elementwise maps of the quantizer op
 * (src/quant/ops.ts), each as its forward, its pseudo-gradient ∂q/∂x and, for the kinds with a
 * learned scalar p, ∂q/∂p, evaluated in double precision. The oracle for kernels/fakequant.ts.
 */
import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { FakeQuantAttrs } from '../../quant/ops.js';
import { roundHalfAway } from '../../quant/kernels.js';
import { nestedCode } from '../../quant/nested-code.js';

interface Elementwise {
  forward(x: number, a: any, p: number): number;
  /** ∂q/∂x (the pseudo-gradient). */
  dx(x: number, a: any, p: number): number;
  /** ∂q/∂p for the learned scalar. */
  dp?(x: number, a: any, p: number): number;
}

const inClip = (x: number, clip: number | null): number => (clip === null || Math.abs(x) <= clip ? 1 : 0);
/** +1 for x ≥ 0 (−0 included), else −1 (NaN too). */
const sign = (x: number): number => (x >= 0 ? 1 : -1);
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

const floats = (t: Tensor): FloatArray => t.data() as FloatArray;

export function fakeQuant(x: Tensor, out: Tensor, a: FakeQuantAttrs, p: number): void {
  const f = maps[a.kind].forward, xv = floats(x), ov = floats(out);
  for (let i = 0; i < ov.length; i++) ov[i] = f(xv[i]!, a, p);
}

export function fakeQuantGrad(x: Tensor, g: Tensor | null, gx: Tensor | null, gp: Tensor | null, a: FakeQuantAttrs, p: number): void {
  const m = maps[a.kind], xv = floats(x), gv = g ? floats(g) : null;
  for (const [out, f] of [[gx, m.dx], [gp, m.dp ?? (() => 0)]] as const) {
    if (!out) continue;
    const ov = floats(out);
    if (gv) for (let i = 0; i < ov.length; i++) ov[i] = gv[i]! * f(xv[i]!, a, p);
    else for (let i = 0; i < ov.length; i++) ov[i] = f(xv[i]!, a, p);
  }
}

/** out = sin(x + phase), x + phase in float64 (FDA's noise-adaptation skip and its derivative). */
export function sin(x: Tensor, out: Tensor, phase: number): void {
  const xv = floats(x), ov = floats(out);
  for (let i = 0; i < ov.length; i++) ov[i] = Math.sin(xv[i]! + phase);
}
