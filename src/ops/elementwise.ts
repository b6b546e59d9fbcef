/**
 * Elementwise ops: broadcasting binary arithmetic, unary math and activations, and the
 * in-place helpers that optimizers and autograd accumulation use.
 */
import type { DType, FloatArray } from '../core/dtype.js';
import { broadcastShapes, fmt, ShapeError, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { defineOp, runOp, type OpDef, type OpSample, type TensorMeta } from './registry.js';
import { sumTo } from './reduce.js';

// ---------------------------------------------------------------------------------------------
// Iteration helpers

/** Element strides of `t` broadcast to `out` (0 along broadcast dimensions). */
function broadcastStrides(t: Tensor, out: Shape): number[] {
  const s = new Array<number>(out.length).fill(0);
  const off = out.length - t.rank;
  for (let i = 0; i < t.rank; i++) s[off + i] = t.shape[i] === 1 ? 0 : t.strides[i]!;
  return s;
}

/**
 * Calls `body(aOffset, bOffset, outIndex, n, aStep, bStep)` for each innermost run of an
 * output of shape `out`, with element offsets into the (possibly strided, broadcast) inputs.
 */
function forEachRun(
  out: Shape,
  a: Tensor,
  b: Tensor | null,
  body: (ao: number, bo: number, oi: number, n: number, as: number, bs: number) => void,
): void {
  const rank = out.length;
  const as = broadcastStrides(a, out);
  const bs = b ? broadcastStrides(b, out) : as;
  if (rank === 0) {
    body(a.offset, b ? b.offset : 0, 0, 1, 0, 0);
    return;
  }
  const inner = out[rank - 1]!;
  const outer = inner === 0 ? 0 : out.reduce((p, d) => p * d, 1) / inner;
  const idx = new Array<number>(rank - 1).fill(0);
  let ao = a.offset, bo = b ? b.offset : 0;
  for (let r = 0; r < outer; r++) {
    body(ao, bo, r * inner, inner, as[rank - 1]!, bs[rank - 1]!);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      ao += as[d]!;
      bo += bs[d]!;
      if (idx[d]! < out[d]!) break;
      ao -= as[d]! * out[d]!;
      bo -= bs[d]! * out[d]!;
      idx[d] = 0;
    }
  }
}

function floatDType(op: string, ...metas: (TensorMeta | null)[]): DType {
  const d = metas[0]!.dtype;
  for (const m of metas) {
    if (m && m.dtype !== d) throw new ShapeError(op, `dtype mismatch: ${metas.map((x) => x?.dtype).join(' vs ')}`);
  }
  if (d !== 'float32' && d !== 'float64') throw new ShapeError(op, `expects float tensors, got ${d}`);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Binary broadcasting ops

type BinaryFn = (x: number, y: number) => number;

function binaryForward(name: string, f: BinaryFn) {
  return (a: Tensor, b: Tensor): Tensor => {
    const shape = broadcastShapes(name, a.shape, b.shape);
    const out = Tensor.empty(shape, a.dtype);
    const o = out.data() as FloatArray;
    const av = a.storage.view() as FloatArray, bv = b.storage.view() as FloatArray;
    forEachRun(shape, a, b, (ao, bo, oi, n, as, bs) => {
      for (let i = 0; i < n; i++) o[oi + i] = f(av[ao + i * as]!, bv[bo + i * bs]!);
    });
    return out;
  };
}

const binarySamples = (): OpSample[] => [
  { inputs: [{ shape: [3, 4] }, { shape: [3, 4] }], attrs: {}, label: 'same shape' },
  { inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], attrs: {}, label: 'broadcast row' },
  { inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], attrs: {}, label: 'broadcast both' },
];

function defineBinary(
  name: string,
  f: BinaryFn,
  saves: Record<string, 'input'>,
  grads: (ctx: { a: () => Tensor; b: () => Tensor }, g: Tensor) => [Tensor | null, Tensor | null],
  samples: () => OpSample[] = binarySamples,
): OpDef {
  const fwd = binaryForward(name, f);
  return defineOp({
    name,
    inputs: ['a', 'b'],
    saves,
    infer: ([a, b]) => [{ shape: broadcastShapes(name, a!.shape, b!.shape), dtype: floatDType(name, a!, b!) }],
    forward(ctx, [a, b]) {
      for (const k of Object.keys(saves)) ctx.save(k, k === 'a' ? a! : b!);
      return [fwd(a!, b!)];
    },
    backward(ctx, [g]) {
      const [ga, gb] = grads({ a: () => ctx.saved('a'), b: () => ctx.saved('b') }, g!);
      return [
        ga && ctx.needsInputGrad[0] ? sumTo(ga, ctx.inputShape(0)) : null,
        gb && ctx.needsInputGrad[1] ? sumTo(gb, ctx.inputShape(1)) : null,
      ];
    },
    samples,
  });
}

const addOp = defineBinary('add', (x, y) => x + y, {}, (_, g) => [g, g]);
const subOp = defineBinary('sub', (x, y) => x - y, {}, (_, g) => [g, neg(g)]);
const mulOp = defineBinary('mul', (x, y) => x * y, { a: 'input', b: 'input' }, (s, g) => [mul(g, s.b()), mul(g, s.a())]);
const divOp = defineBinary(
  'div',
  (x, y) => x / y,
  { a: 'input', b: 'input' },
  (s, g) => {
    const b = s.b();
    return [div(g, b), neg(div(mul(g, s.a()), mul(b, b)))];
  },
  () => [
    { inputs: [{ shape: [3, 4] }, { shape: [3, 4], positive: true }], attrs: {} },
    { inputs: [{ shape: [2, 3] }, { shape: [3], positive: true }], attrs: {}, label: 'broadcast' },
  ],
);

/** a + b with broadcasting. */
export const add = (a: Tensor, b: Tensor): Tensor => runOp(addOp, [a, b], {})[0]!;
/** a - b with broadcasting. */
export const sub = (a: Tensor, b: Tensor): Tensor => runOp(subOp, [a, b], {})[0]!;
/** a * b with broadcasting. */
export const mul = (a: Tensor, b: Tensor): Tensor => runOp(mulOp, [a, b], {})[0]!;
/** a / b with broadcasting. */
export const div = (a: Tensor, b: Tensor): Tensor => runOp(divOp, [a, b], {})[0]!;

// ---------------------------------------------------------------------------------------------
// Unary ops

type UnaryBackward = (ctx: { saved: (n: string) => Tensor; state: Record<string, unknown> }, g: Tensor, attrs: any) => Tensor;

interface UnaryDef {
  name: string;
  f: (x: number, attrs: any) => number;
  /** What backward reads: the input x or the output y. */
  saves: { x?: 'input'; y?: 'output' };
  backward?: UnaryBackward;
  sampleSpec?: Partial<OpSample['inputs'][number]>;
  attrs?: any[];
  tolerance?: number;
  secondOrder?: boolean;
}

function mapUnary(x: Tensor, f: (v: number, attrs: any) => number, attrs: any): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  const o = out.data() as FloatArray;
  const xv = x.storage.view() as FloatArray;
  forEachRun(x.shape, x, null, (xo, _bo, oi, n, xs) => {
    for (let i = 0; i < n; i++) o[oi + i] = f(xv[xo + i * xs]!, attrs);
  });
  return out;
}

function defineUnary(d: UnaryDef): OpDef {
  return defineOp({
    name: d.name,
    inputs: ['x'],
    saves: d.saves,
    infer: ([x]) => [{ shape: x!.shape, dtype: floatDType(d.name, x!) }],
    forward(ctx, [x], attrs) {
      const y = mapUnary(x!, d.f, attrs);
      if (d.saves.x) ctx.save('x', x!);
      if (d.saves.y) ctx.save('y', y);
      return [y];
    },
    backward: d.backward && ((ctx, [g], attrs) => [d.backward!(ctx, g!, attrs)]),
    samples: () =>
      (d.attrs ?? [{}]).map((attrs) => ({ inputs: [{ shape: [3, 5], ...d.sampleSpec }], attrs, label: JSON.stringify(attrs) })),
    gradcheckTolerance: d.tolerance,
    secondOrder: d.secondOrder,
  });
}

const negOp = defineUnary({ name: 'neg', f: (x) => -x, saves: {}, backward: (_, g) => neg(g) });
const expOp = defineUnary({ name: 'exp', f: Math.exp, saves: { y: 'output' }, backward: (c, g) => mul(g, c.saved('y')) });
const logOp = defineUnary({
  name: 'log',
  f: Math.log,
  saves: { x: 'input' },
  backward: (c, g) => div(g, c.saved('x')),
  sampleSpec: { positive: true },
});
const sqrtOp = defineUnary({
  name: 'sqrt',
  f: Math.sqrt,
  saves: { y: 'output' },
  backward: (c, g) => div(mulScalar(g, 0.5), c.saved('y')),
  sampleSpec: { positive: true },
});
const tanhOp = defineUnary({
  name: 'tanh',
  f: Math.tanh,
  saves: { y: 'output' },
  backward: (c, g) => {
    const y = c.saved('y');
    return mul(g, addScalar(neg(mul(y, y)), 1));
  },
});
const sigmoidFn = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const sigmoidOp = defineUnary({
  name: 'sigmoid',
  f: sigmoidFn,
  saves: { y: 'output' },
  backward: (c, g) => {
    const y = c.saved('y');
    return mul(g, mul(y, addScalar(neg(y), 1)));
  },
});
const softplusOp = defineUnary({
  name: 'softplus',
  f: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  saves: { x: 'input' },
  backward: (c, g) => mul(g, sigmoid(c.saved('x'))),
});
const mulScalarOp = defineUnary({
  name: 'mul_scalar',
  f: (x, a: { s: number }) => x * a.s,
  saves: {},
  backward: (_, g, a) => mulScalar(g, a.s),
  attrs: [{ s: 2.5 }],
});
const addScalarOp = defineUnary({
  name: 'add_scalar',
  f: (x, a: { s: number }) => x + a.s,
  saves: {},
  backward: (_, g) => g.alias(),
  attrs: [{ s: -1.5 }],
});
const powScalarOp = defineUnary({
  name: 'pow_scalar',
  f: (x, a: { p: number }) => Math.pow(x, a.p),
  saves: { x: 'input' },
  backward: (c, g, a) => mul(g, mulScalar(powScalar(c.saved('x'), a.p - 1), a.p)),
  sampleSpec: { positive: true },
  attrs: [{ p: 2 }, { p: 3 }, { p: -0.5 }],
});

const GELU_C = Math.sqrt(2 / Math.PI);
/** tanh-approximation GELU (as in GPT-2/BERT implementations). */
const geluFn = (x: number): number => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
const geluGradFn = (x: number): number => {
  const u = GELU_C * (x + 0.044715 * x * x * x);
  const t = Math.tanh(u);
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
};
const geluGradOp = defineUnary({ name: 'gelu_grad', f: geluGradFn, saves: {} });
const geluOp = defineUnary({
  name: 'gelu',
  f: geluFn,
  saves: { x: 'input' },
  backward: (c, g) => mul(g, runOp(geluGradOp, [c.saved('x')], {})[0]!),
  secondOrder: false,
});

export const neg = (x: Tensor): Tensor => runOp(negOp, [x], {})[0]!;
export const exp = (x: Tensor): Tensor => runOp(expOp, [x], {})[0]!;
export const log = (x: Tensor): Tensor => runOp(logOp, [x], {})[0]!;
export const sqrt = (x: Tensor): Tensor => runOp(sqrtOp, [x], {})[0]!;
export const tanh = (x: Tensor): Tensor => runOp(tanhOp, [x], {})[0]!;
export const sigmoid = (x: Tensor): Tensor => runOp(sigmoidOp, [x], {})[0]!;
/** log(1 + e^x): a smooth ReLU (twice differentiable, used for Hessian-based explanations). */
export const softplus = (x: Tensor): Tensor => runOp(softplusOp, [x], {})[0]!;
export const gelu = (x: Tensor): Tensor => runOp(geluOp, [x], {})[0]!;
export const mulScalar = (x: Tensor, s: number): Tensor => runOp(mulScalarOp, [x], { s })[0]!;
export const addScalar = (x: Tensor, s: number): Tensor => runOp(addScalarOp, [x], { s })[0]!;
export const powScalar = (x: Tensor, p: number): Tensor => runOp(powScalarOp, [x], { p })[0]!;

// ---------------------------------------------------------------------------------------------
// Piecewise-linear activations: they save a 0/1 mask (role 'mask'), never the float tensor.

/** g * mask (mask uint8, same shape): the backward of every masked activation; linear in g. */
const maskMulOp: OpDef<{ scaleOff: number }> = defineOp({
  name: 'mask_mul',
  inputs: ['g', 'mask'],
  saves: { mask: 'mask' },
  differentiable: [true, false],
  infer: ([g, m]) => {
    if (m!.dtype !== 'uint8' || m!.shape.join() !== g!.shape.join()) {
      throw new ShapeError('mask_mul', `mask must be uint8 of shape ${fmt(g!.shape)}, got ${m!.dtype} ${fmt(m!.shape)}`);
    }
    return [{ shape: g!.shape, dtype: floatDType('mask_mul', g!) }];
  },
  forward(ctx, [g, m], { scaleOff }) {
    ctx.save('mask', m!);
    const gc = contiguous(g!), mc = contiguous(m!);
    const out = Tensor.empty(g!.shape, g!.dtype);
    const o = out.data() as FloatArray, gv = gc.data() as FloatArray, mv = mc.data();
    for (let i = 0; i < o.length; i++) o[i] = mv[i] ? gv[i]! : gv[i]! * scaleOff;
    if (gc !== g) gc.dispose();
    if (mc !== m) mc.dispose();
    return [out];
  },
  backward: (ctx, [gg], attrs) => [maskMul(gg!, ctx.saved('mask'), attrs.scaleOff), null],
  samples: () => [
    { inputs: [{ shape: [4, 3] }, { shape: [4, 3], dtype: 'uint8', values: (r) => Array.from({ length: 12 }, () => r.int(2)) }], attrs: { scaleOff: 0 } },
    { inputs: [{ shape: [4, 3] }, { shape: [4, 3], dtype: 'uint8', values: (r) => Array.from({ length: 12 }, () => r.int(2)) }], attrs: { scaleOff: 0.1 } },
  ],
});

export function maskMul(g: Tensor, mask: Tensor, scaleOff = 0): Tensor {
  return runOp(maskMulOp, [g, mask], { scaleOff })[0]!;
}

interface MaskedAttrs {
  slope?: number;
  min?: number;
  max?: number;
}

function defineMasked(name: string, f: (x: number, a: MaskedAttrs) => number, pass: (x: number, a: MaskedAttrs) => boolean, slopeOff: (a: MaskedAttrs) => number, attrs: MaskedAttrs[]): OpDef<MaskedAttrs> {
  return defineOp<MaskedAttrs>({
    name,
    inputs: ['x'],
    saves: { mask: 'mask' },
    infer: ([x]) => [{ shape: x!.shape, dtype: floatDType(name, x!) }],
    forward(ctx, [x], a) {
      const y = mapUnary(x!, f, a);
      if (ctx.needsGrad) {
        const xc = contiguous(x!);
        const mask = Tensor.empty(x!.shape, 'uint8');
        const mv = mask.data(), xv = xc.data() as FloatArray;
        for (let i = 0; i < mv.length; i++) mv[i] = pass(xv[i]!, a) ? 1 : 0;
        if (xc !== x) xc.dispose();
        ctx.save('mask', mask);
        mask.dispose();
      }
      return [y];
    },
    backward: (ctx, [g], a) => [maskMul(g!, ctx.saved('mask'), slopeOff(a))],
    samples: () => attrs.map((a) => ({ inputs: [{ shape: [4, 6], awayFromZero: 0.05 }], attrs: a })),
  });
}

const reluOp = defineMasked('relu', (x) => (x > 0 ? x : 0), (x) => x > 0, () => 0, [{}]);
const leakyReluOp = defineMasked(
  'leaky_relu',
  (x, a) => (x > 0 ? x : x * a.slope!),
  (x) => x > 0,
  (a) => a.slope!,
  [{ slope: 0.01 }, { slope: 0.2 }],
);
const hardtanhOp = defineMasked(
  'hardtanh',
  (x, a) => Math.min(a.max!, Math.max(a.min!, x)),
  (x, a) => x > a.min! && x < a.max!,
  () => 0,
  [{ min: -1, max: 1 }],
);

export const relu = (x: Tensor): Tensor => runOp(reluOp, [x], {})[0]!;
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => runOp(leakyReluOp, [x], { slope })[0]!;
export const hardtanh = (x: Tensor, min = -1, max = 1): Tensor => runOp(hardtanhOp, [x], { min, max })[0]!;

// ---------------------------------------------------------------------------------------------
// Copies and in-place helpers (not recorded by autograd)

const contiguousOp = defineOp({
  name: 'contiguous',
  inputs: ['x'],
  saves: {},
  infer: ([x]) => [{ shape: x!.shape, dtype: x!.dtype }],
  forward(_ctx, [x]) {
    const out = Tensor.empty(x!.shape, x!.dtype);
    const o = out.data(), xv = x!.storage.view();
    forEachRun(x!.shape, x!, null, (xo, _b, oi, n, xs) => {
      for (let i = 0; i < n; i++) o[oi + i] = xv[xo + i * xs]!;
    });
    return [out];
  },
  backward: (_ctx, [g]) => [g!.alias()],
  samples: () => [{ inputs: [{ shape: [3, 4] }], attrs: {} }],
});

/** `x` itself if it is contiguous, else a contiguous copy (the caller disposes a copy). */
export function contiguous(x: Tensor): Tensor {
  return x.isContiguous() ? x : runOp(contiguousOp, [x], {})[0]!;
}

/** Copies `src` (broadcast to dst's shape) into `dst` in place. */
export function copyTo(src: Tensor, dst: Tensor): void {
  assertInPlace('copyTo', dst, src);
  const o = dst.data(), s = src.storage.view();
  forEachRun(dst.shape, src, null, (so, _b, oi, n, ss) => {
    for (let i = 0; i < n; i++) o[oi + i] = s[so + i * ss]!;
  });
  dst.bumpVersion();
}

function assertInPlace(op: string, dst: Tensor, src: Tensor): void {
  if (!dst.isContiguous()) throw new Error(`${op}: destination must be contiguous`);
  if (dst.dtype !== src.dtype) throw new ShapeError(op, `dtype mismatch: ${dst.dtype} vs ${src.dtype}`);
  const b = broadcastShapes(op, dst.shape, src.shape);
  if (b.join() !== dst.shape.join()) throw new ShapeError(op, `cannot write ${fmt(src.shape)} into ${fmt(dst.shape)}`);
}

/** dst += alpha * src, in place (src broadcast to dst's shape). */
export function addInPlace(dst: Tensor, src: Tensor, alpha = 1): void {
  assertInPlace('addInPlace', dst, src);
  const o = dst.data() as FloatArray, s = src.storage.view() as FloatArray;
  forEachRun(dst.shape, src, null, (so, _b, oi, n, ss) => {
    for (let i = 0; i < n; i++) o[oi + i]! += alpha * s[so + i * ss]!;
  });
  dst.bumpVersion();
}

/** Fills `dst` with `value` in place. */
export function fill(dst: Tensor, value: number): void {
  if (!dst.isContiguous()) throw new Error('fill: destination must be contiguous');
  dst.data().fill(value);
  dst.bumpVersion();
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  if (value !== 0) t.data().fill(value);
  return t;
}

export const zeros = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, t.dtype);
