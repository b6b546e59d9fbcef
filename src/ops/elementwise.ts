/**
 * Elementwise ops: broadcasting binary arithmetic, unary math and activations, and the
 * in-place helpers that optimizers and autograd accumulation use.
 */
import type { DType } from '../core/dtype.js';
import { broadcastShapes, fmt, shapeEq, ShapeError, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { BinaryOp, UnaryOp } from '../backends/kernels.js';
import { defineOp, runOp, type OpDef, type OpSample, type TensorMeta } from './registry.js';
import { sumTo } from './reduce.js';

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

/**
 * Whether contiguous `b` repeats along the leading axes of `shape` (same shape, or a trailing
 * block such as a bias row), so that the binary kernel can read it as b[i % b.size].
 */
function repeatsAlongLeading(b: Tensor, shape: Shape): boolean {
  if (!b.isContiguous()) return false;
  const off = shape.length - b.rank;
  let leading = true;
  for (let d = 0; d < shape.length; d++) {
    const bd = d < off ? 1 : b.shape[d - off]!;
    if (leading && bd === 1 && shape[d] !== 1) continue;
    leading = false;
    if (bd !== shape[d]) return false;
  }
  return true;
}

/** `t` broadcast to `shape` as a new contiguous tensor (the caller disposes it). */
function materialize(t: Tensor, shape: Shape): Tensor {
  const out = Tensor.uninitialized(shape, t.dtype, 'workspace');
  kernels(t.dtype).copy(t, out);
  return out;
}

function binaryForward(name: BinaryOp) {
  const commutative = name === 'add' || name === 'mul';
  return (a: Tensor, b: Tensor): Tensor => {
    const shape = broadcastShapes(name, a.shape, b.shape);
    // The kernel takes a of the output's shape and b repeating along leading axes; anything
    // else (strided, broadcast on both sides) is copied into that form first.
    if (commutative && !shapeEq(a.shape, shape)) [a, b] = [b, a];
    const ac = a.isContiguous() && shapeEq(a.shape, shape) ? a : materialize(a, shape);
    const bc = repeatsAlongLeading(b, shape) ? b : materialize(b, shape);
    const out = Tensor.uninitialized(shape, a.dtype);
    kernels(a.dtype).binary(name, ac, bc, out);
    if (ac !== a) ac.dispose();
    if (bc !== b) bc.dispose();
    return out;
  };
}

const binarySamples = (): OpSample[] => [
  { inputs: [{ shape: [3, 4] }, { shape: [3, 4] }], attrs: {}, label: 'same shape' },
  { inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], attrs: {}, label: 'broadcast row' },
  { inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], attrs: {}, label: 'broadcast both' },
];

function defineBinary(
  name: BinaryOp,
  saves: Record<string, 'input'>,
  grads: (ctx: { a: () => Tensor; b: () => Tensor }, g: Tensor) => [Tensor | null, Tensor | null],
  samples: () => OpSample[] = binarySamples,
): OpDef {
  const fwd = binaryForward(name);
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

const addOp = defineBinary('add', {}, (_, g) => [g, g]);
const subOp = defineBinary('sub', {}, (_, g) => [g, neg(g)]);
const mulOp = defineBinary('mul', { a: 'input', b: 'input' }, (s, g) => [mul(g, s.b()), mul(g, s.a())]);
const divOp = defineBinary(
  'div',
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
  name: UnaryOp;
  /** The kernel's scalar from the attributes (mul_scalar, add_scalar, pow_scalar). */
  scalar?: (attrs: any) => number;
  /** What backward reads: the input x or the output y. */
  saves: { x?: 'input'; y?: 'output' };
  backward?: UnaryBackward;
  sampleSpec?: Partial<OpSample['inputs'][number]>;
  attrs?: any[];
  tolerance?: number;
  secondOrder?: boolean;
}

/** Runs an elementwise kernel on a contiguous copy of x when x is strided. */
function elementwise(x: Tensor, run: (xc: Tensor) => void): void {
  const xc = contiguous(x);
  run(xc);
  if (xc !== x) xc.dispose();
}

function defineUnary(d: UnaryDef): OpDef {
  return defineOp({
    name: d.name,
    inputs: ['x'],
    saves: d.saves,
    infer: ([x]) => [{ shape: x!.shape, dtype: floatDType(d.name, x!) }],
    forward(ctx, [x], attrs) {
      const y = Tensor.uninitialized(x!.shape, x!.dtype);
      elementwise(x!, (xc) => kernels(x!.dtype).unary(d.name, xc, y, d.scalar ? d.scalar(attrs) : 0));
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

const negOp = defineUnary({ name: 'neg', saves: {}, backward: (_, g) => neg(g) });
const expOp = defineUnary({ name: 'exp', saves: { y: 'output' }, backward: (c, g) => mul(g, c.saved('y')) });
const logOp = defineUnary({
  name: 'log',
  saves: { x: 'input' },
  backward: (c, g) => div(g, c.saved('x')),
  sampleSpec: { positive: true },
});
const sqrtOp = defineUnary({
  name: 'sqrt',
  saves: { y: 'output' },
  backward: (c, g) => div(mulScalar(g, 0.5), c.saved('y')),
  sampleSpec: { positive: true },
});
const tanhOp = defineUnary({
  name: 'tanh',
  saves: { y: 'output' },
  backward: (c, g) => {
    const y = c.saved('y');
    return mul(g, addScalar(neg(mul(y, y)), 1));
  },
});
const sigmoidOp = defineUnary({
  name: 'sigmoid',
  saves: { y: 'output' },
  backward: (c, g) => {
    const y = c.saved('y');
    return mul(g, mul(y, addScalar(neg(y), 1)));
  },
});
const softplusOp = defineUnary({
  name: 'softplus',
  saves: { x: 'input' },
  backward: (c, g) => mul(g, sigmoid(c.saved('x'))),
});
const mulScalarOp = defineUnary({
  name: 'mul_scalar',
  scalar: (a: { s: number }) => a.s,
  saves: {},
  backward: (_, g, a) => mulScalar(g, a.s),
  attrs: [{ s: 2.5 }],
});
const addScalarOp = defineUnary({
  name: 'add_scalar',
  scalar: (a: { s: number }) => a.s,
  saves: {},
  backward: (_, g) => g.alias(),
  attrs: [{ s: -1.5 }],
});
const powScalarOp = defineUnary({
  name: 'pow_scalar',
  scalar: (a: { p: number }) => a.p,
  saves: { x: 'input' },
  backward: (c, g, a) => mul(g, mulScalar(powScalar(c.saved('x'), a.p - 1), a.p)),
  sampleSpec: { positive: true },
  attrs: [{ p: 2 }, { p: 3 }, { p: -0.5 }],
});

/** The derivative of the tanh-approximation GELU (as in GPT-2/BERT implementations). */
const geluGradOp = defineUnary({ name: 'gelu_grad', saves: {} });
const geluOp = defineUnary({
  name: 'gelu',
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
    const out = Tensor.uninitialized(g!.shape, g!.dtype);
    kernels(g!.dtype).maskMul(gc, mc, out, scaleOff);
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

/**
 * A masked activation: value and 0/1 mask in one kernel pass; where the mask is 0 the gradient is
 * scaled by `slopeOff`.
 */
function defineMasked(
  name: string,
  slopeOff: (a: MaskedAttrs) => number,
  attrs: MaskedAttrs[],
  run: (xc: Tensor, y: Tensor, mask: Tensor | null, a: MaskedAttrs) => void,
): OpDef<MaskedAttrs> {
  return defineOp<MaskedAttrs>({
    name,
    inputs: ['x'],
    saves: { mask: 'mask' },
    infer: ([x]) => [{ shape: x!.shape, dtype: floatDType(name, x!) }],
    forward(ctx, [x], a) {
      const y = Tensor.uninitialized(x!.shape, x!.dtype);
      const mask = ctx.needsGrad ? Tensor.uninitialized(x!.shape, 'uint8') : null;
      elementwise(x!, (xc) => run(xc, y, mask, a));
      if (mask) {
        ctx.save('mask', mask);
        mask.dispose();
      }
      return [y];
    },
    backward: (ctx, [g], a) => [maskMul(g!, ctx.saved('mask'), slopeOff(a))],
    samples: () => attrs.map((a) => ({ inputs: [{ shape: [4, 6], awayFromZero: 0.05 }], attrs: a })),
  });
}

// x > 0 ? x : x * slope on the reluMask kernel (slope 0: ReLU).
const reluOp = defineMasked('relu', () => 0, [{}], (xc, y, mask) => kernels(xc.dtype).reluMask(xc, y, mask, 0));
const leakyReluOp = defineMasked('leaky_relu', (a) => a.slope!, [{ slope: 0.01 }, { slope: 0.2 }], (xc, y, mask, a) => kernels(xc.dtype).reluMask(xc, y, mask, a.slope!));
const hardtanhOp = defineMasked('hardtanh', () => 0, [{ min: -1, max: 1 }], (xc, y, mask, a) => kernels(xc.dtype).hardtanhMask(xc, y, mask, a.min!, a.max!));

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
    const out = Tensor.uninitialized(x!.shape, x!.dtype);
    kernels(x!.dtype).copy(x!, out);
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
  kernels(dst.dtype).copy(src, dst);
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
  const k = kernels(dst.dtype);
  const s = alpha === 1 && repeatsAlongLeading(src, dst.shape) ? src : materialize(src, dst.shape);
  if (alpha !== 1) k.unary('mul_scalar', s, s, alpha);
  k.binary('add', dst, s, dst);
  if (s !== src) s.dispose();
  dst.bumpVersion();
}

/** Fills `dst` with `value` in place. */
export function fill(dst: Tensor, value: number): void {
  if (!dst.isContiguous()) throw new Error('fill: destination must be contiguous');
  kernels(dst.dtype).fill(dst, value);
  dst.bumpVersion();
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  if (value !== 0) kernels(dtype).fill(t, value);
  return t;
}

export const zeros = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'float32'): Tensor => full(shape, 1, dtype);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, t.dtype);
