/** Reductions over axes (sum, mean, max) and the broadcast/un-broadcast pair used by backward. */
import { fmt, normAxis, numel, ShapeError, shapeEq, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { ReduceLayout } from '../backends/kernels.js';
import { contiguous, maskMul, mulScalar } from './elementwise.js';
import { permute, reshape } from './movement.js';
import { defineOp, runOp, type OpSample, type TensorMeta } from './registry.js';

export interface ReduceAttrs {
  /** Axes to reduce (negative allowed); undefined = all. */
  axes?: number[];
  keepDims?: boolean;
}

function reducedShape(op: string, shape: Shape, a: ReduceAttrs): { keep: number[]; out: number[]; axes: Set<number> } {
  const axes = new Set((a.axes ?? shape.map((_, i) => i)).map((ax) => normAxis(op, ax, shape.length)));
  const keep = shape.map((d, i) => (axes.has(i) ? 1 : d));
  const out = a.keepDims ? keep : shape.filter((_, i) => !axes.has(i));
  return { keep, out, axes };
}

function floatOnly(op: string, m: TensorMeta): void {
  if (m.dtype !== 'float32' && m.dtype !== 'float64') throw new ShapeError(op, `expects a float tensor, got ${m.dtype}`);
}

/**
 * How the reduce kernel sees x: [outer, reduced, inner] when the reduced axes are adjacent (no
 * copy), else x permuted to (kept axes, reduced axes) with `perm` (the op copies it first).
 */
function reduceLayout(shape: Shape, axes: Set<number>): { layout: ReduceLayout; perm: number[] | null } {
  const prod = (dims: number[]) => dims.reduce((p, d) => p * shape[d]!, 1);
  const sorted = [...axes].sort((a, b) => a - b);
  const all = shape.map((_, i) => i);
  if (sorted.length === 0) return { layout: { outer: numel(shape), reduced: 1, inner: 1 }, perm: null };
  const lo = sorted[0]!, hi = sorted[sorted.length - 1]! + 1;
  if (hi - lo === sorted.length) return { layout: { outer: prod(all.slice(0, lo)), reduced: prod(sorted), inner: prod(all.slice(hi)) }, perm: null };
  const kept = all.filter((d) => !axes.has(d));
  return { layout: { outer: prod(kept), reduced: prod(sorted), inner: 1 }, perm: [...kept, ...sorted] };
}

/** x as the reduce kernel reads it: contiguous, permuted when the reduced axes are not adjacent. */
function reduceInput(x: Tensor, perm: number[] | null): Tensor {
  if (!perm) return contiguous(x);
  const p = permute(x, perm);
  const c = contiguous(p);
  // contiguous() returns its input when the permuted view is already dense (size-1 axes moved).
  if (c !== p) p.dispose();
  return c;
}

const reduceSamples = (): OpSample[] => [
  { inputs: [{ shape: [3, 4, 5] }], attrs: {}, label: 'all' },
  { inputs: [{ shape: [3, 4, 5] }], attrs: { axes: [1] }, label: 'middle' },
  { inputs: [{ shape: [3, 4, 5] }], attrs: { axes: [0, -1], keepDims: true }, label: 'outer+inner keep' },
  // Reducing around a size-1 leading axis permutes into a view that is already dense.
  { inputs: [{ shape: [1, 3, 2, 2] }], attrs: { axes: [0, 2, 3], keepDims: true }, label: 'per channel, batch 1' },
];

const sumOp = defineOp<ReduceAttrs>({
  name: 'sum',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => {
    floatOnly('sum', x!);
    return [{ shape: reducedShape('sum', x!.shape, a).out, dtype: x!.dtype }];
  },
  forward(_ctx, [x], a) {
    const { out, axes } = reducedShape('sum', x!.shape, a);
    const { layout, perm } = reduceLayout(x!.shape, axes);
    const xc = reduceInput(x!, perm);
    const y = Tensor.uninitialized(out, x!.dtype);
    kernels(x!.dtype).reduce('sum', xc, y, layout, null);
    if (xc !== x) xc.dispose();
    return [y];
  },
  backward: (ctx, [g], a) => {
    const shape = ctx.inputShape(0);
    const { keep } = reducedShape('sum', shape, a);
    const gk = reshape(g!, keep);
    const r = broadcastTo(gk, shape);
    gk.dispose();
    return [r];
  },
  samples: reduceSamples,
});

const maxOp = defineOp<ReduceAttrs>({
  name: 'max',
  inputs: ['x'],
  // The positions of the maxima (first one wins ties), as a 0/1 mask over x.
  saves: { mask: 'mask' },
  infer: ([x], a) => {
    floatOnly('max', x!);
    return [{ shape: reducedShape('max', x!.shape, a).out, dtype: x!.dtype }];
  },
  forward(ctx, [x], a) {
    const { out, axes } = reducedShape('max', x!.shape, a);
    const { layout, perm } = reduceLayout(x!.shape, axes);
    const xc = reduceInput(x!, perm);
    const y = Tensor.uninitialized(out, x!.dtype);
    let mask = ctx.needsGrad ? Tensor.uninitialized(xc.shape, 'uint8') : null;
    kernels(x!.dtype).reduce('max', xc, y, layout, mask);
    if (mask && perm) {
      // Back to x's axis order.
      const inverse = perm.map((_, i) => perm.indexOf(i));
      const view = permute(mask, inverse);
      mask.dispose();
      mask = contiguous(view);
      if (mask !== view) view.dispose();
    }
    if (mask) {
      ctx.save('mask', mask);
      mask.dispose();
    }
    if (xc !== x) xc.dispose();
    return [y];
  },
  backward: (ctx, [g], a) => {
    const shape = ctx.inputShape(0);
    const gk = reshape(g!, reducedShape('max', shape, a).keep);
    const gb = broadcastTo(gk, shape);
    return [maskMul(gb, ctx.saved('mask'))];
  },
  samples: reduceSamples,
});

/** Sum over `axes` (all by default). */
export const sum = (x: Tensor, axes?: number[], keepDims = false): Tensor => runOp(sumOp, [x], { axes, keepDims })[0]!;
/** Maximum over `axes` (all by default); the gradient goes to the first maximum. */
export const max = (x: Tensor, axes?: number[], keepDims = false): Tensor => runOp(maxOp, [x], { axes, keepDims })[0]!;

/** Mean over `axes` (all by default). */
export function mean(x: Tensor, axes?: number[], keepDims = false): Tensor {
  const s = sum(x, axes, keepDims);
  const count = x.size / Math.max(1, s.size);
  const m = mulScalar(s, 1 / count);
  s.dispose();
  return m;
}

// ---------------------------------------------------------------------------------------------
// Broadcast and its adjoint

const broadcastToOp = defineOp<{ shape: number[] }>({
  name: 'broadcast_to',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => {
    const off = a.shape.length - x!.shape.length;
    if (off < 0 || x!.shape.some((d, i) => d !== 1 && d !== a.shape[off + i])) {
      throw new ShapeError('broadcast_to', `cannot broadcast ${fmt(x!.shape)} to ${fmt(a.shape)}`);
    }
    return [{ shape: a.shape, dtype: x!.dtype }];
  },
  forward(_ctx, [x], a) {
    // A view with stride 0 along broadcast dimensions: no copy.
    const off = a.shape.length - x!.rank;
    const strides = a.shape.map((_, i) => (i < off || x!.shape[i - off] === 1 ? 0 : x!.strides[i - off]!));
    return [x!.view(a.shape, strides, x!.offset)];
  },
  backward: (ctx, [g]) => [sumTo(g!, ctx.inputShape(0))],
  samples: () => [{ inputs: [{ shape: [3, 1] }], attrs: { shape: [2, 3, 4] } }],
});

/** A broadcast view of `x` with shape `shape` (no copy). */
export const broadcastTo = (x: Tensor, shape: Shape): Tensor => runOp(broadcastToOp, [x], { shape: [...shape] })[0]!;

/** Sums `g` down to `shape` (the adjoint of broadcasting); returns a view of g if shapes match. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (shapeEq(g.shape, shape)) return g.alias();
  const off = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < off || (shape[i - off] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = sum(g, axes, true);
  const r = reshape(s, shape);
  s.dispose();
  return r;
}
