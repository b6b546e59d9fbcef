/** Shape and layout ops: reshape, permute/transpose, slice (views, no copy), concat, pad. */
import { kernels } from '../backends/index.js';
import { fmt, normAxis, numel, ShapeError, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { contiguous, zeros } from './elementwise.js';
import { defineOp, runOp } from './registry.js';

function resolveShape(op: string, from: Shape, to: readonly number[]): number[] {
  const n = numel(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new ShapeError(op, `at most one -1 allowed in ${fmt(to)}`);
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(op, `cannot reshape ${fmt(from)} (${n} elements) to ${fmt(to)}`);
  }
  return out;
}

const reshapeOp = defineOp<{ shape: number[] }>({
  name: 'reshape',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => [{ shape: resolveShape('reshape', x!.shape, a.shape), dtype: x!.dtype }],
  forward(_ctx, [x], a) {
    const shape = resolveShape('reshape', x!.shape, a.shape);
    if (x!.isContiguous()) return [x!.view(shape)];
    const c = contiguous(x!);
    const v = c.view(shape);
    c.dispose();
    return [v];
  },
  backward: (ctx, [g]) => [reshape(g!, ctx.inputShape(0))],
  samples: () => [{ inputs: [{ shape: [2, 6] }], attrs: { shape: [3, -1] } }],
});

/** `x` with a new shape (one dimension may be -1). A view when x is contiguous. */
export const reshape = (x: Tensor, shape: readonly number[]): Tensor => runOp(reshapeOp, [x], { shape: [...shape] })[0]!;

const permuteOp = defineOp<{ perm: number[] }>({
  name: 'permute',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => {
    const r = x!.shape.length;
    const seen = new Set(a.perm.map((p) => normAxis('permute', p, r)));
    if (a.perm.length !== r || seen.size !== r) throw new ShapeError('permute', `${fmt(a.perm)} is not a permutation of the ${r} axes of ${fmt(x!.shape)}`);
    return [{ shape: a.perm.map((p) => x!.shape[normAxis('permute', p, r)]!), dtype: x!.dtype }];
  },
  forward(_ctx, [x], a) {
    const p = a.perm.map((ax) => normAxis('permute', ax, x!.rank));
    return [x!.view(p.map((i) => x!.shape[i]!), p.map((i) => x!.strides[i]!), x!.offset)];
  },
  backward: (_ctx, [g], a) => {
    const inv = new Array<number>(a.perm.length);
    a.perm.forEach((p, i) => (inv[p < 0 ? p + a.perm.length : p] = i));
    return [permute(g!, inv)];
  },
  samples: () => [{ inputs: [{ shape: [2, 3, 4] }], attrs: { perm: [2, 0, 1] } }],
});

/** Reorders axes (a strided view, no copy). */
export const permute = (x: Tensor, perm: readonly number[]): Tensor => runOp(permuteOp, [x], { perm: [...perm] })[0]!;

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = normAxis('transpose', a, x.rank), j = normAxis('transpose', b, x.rank);
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return permute(x, perm);
}

interface SliceAttrs {
  /** Per-axis [start, end) (end exclusive); axes beyond the list are kept whole. */
  ranges: [number, number][];
}

function sliceShape(shape: Shape, a: SliceAttrs): number[] {
  return shape.map((d, i) => {
    const r = a.ranges[i];
    if (!r) return d;
    if (r[0] < 0 || r[1] > d || r[0] > r[1]) throw new ShapeError('slice', `range [${r[0]}, ${r[1]}) is out of bounds for axis ${i} of ${fmt(shape)}`);
    return r[1] - r[0];
  });
}

const sliceOp = defineOp<SliceAttrs>({
  name: 'slice',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => [{ shape: sliceShape(x!.shape, a), dtype: x!.dtype }],
  forward(_ctx, [x], a) {
    let offset = x!.offset;
    a.ranges.forEach((r, i) => (offset += r[0] * x!.strides[i]!));
    return [x!.view(sliceShape(x!.shape, a), x!.strides, offset)];
  },
  backward: (ctx, [g], a) => [padTo(g!, ctx.inputShape(0), ctx.inputShape(0).map((_, i) => a.ranges[i]?.[0] ?? 0))],
  samples: () => [
    { inputs: [{ shape: [4, 5] }], attrs: { ranges: [[1, 3], [0, 4]] }, label: 'all axes' },
    { inputs: [{ shape: [3, 2, 4] }], attrs: { ranges: [[1, 2]] }, label: 'leading axis only' },
  ],
});

/** A view of `x` restricted to [start, end) along each listed axis. */
export const slice = (x: Tensor, ranges: [number, number][]): Tensor => runOp(sliceOp, [x], { ranges })[0]!;

/** Copies `src` into the block of `dst` starting at `starts` (dst contiguous). */
function writeBlock(dst: Tensor, src: Tensor, starts: readonly number[]): void {
  const offset = starts.reduce((o, s, d) => o + s * dst.strides[d]!, dst.offset);
  const block = dst.view(src.shape, dst.strides, offset);
  kernels(dst.dtype).copy(src, block);
  block.dispose();
}

const padToOp = defineOp<{ shape: number[]; starts: number[] }>({
  name: 'pad',
  inputs: ['x'],
  saves: {},
  infer: ([x], a) => {
    if (a.shape.length !== x!.shape.length || a.starts.length !== x!.shape.length || x!.shape.some((d, i) => a.starts[i]! < 0 || a.starts[i]! + d > a.shape[i]!)) {
      throw new ShapeError('pad', `cannot place ${fmt(x!.shape)} at ${fmt(a.starts)} inside ${fmt(a.shape)}`);
    }
    return [{ shape: a.shape, dtype: x!.dtype }];
  },
  forward(_ctx, [x], a) {
    const out = zeros(a.shape, x!.dtype);
    writeBlock(out, x!, a.starts);
    return [out];
  },
  backward: (ctx, [g], a) => [slice(g!, a.starts.map((s, i) => [s, s + ctx.inputShape(0)[i]!] as [number, number]))],
  samples: () => [{ inputs: [{ shape: [2, 3] }], attrs: { shape: [4, 6], starts: [1, 2] } }],
});

/** Zero-pads `x` into a tensor of `shape`, with x's element [0,...] at `starts`. */
export const padTo = (x: Tensor, shape: readonly number[], starts: readonly number[]): Tensor =>
  runOp(padToOp, [x], { shape: [...shape], starts: [...starts] })[0]!;

/** Zero padding: `widths[i] = [before, after]` for each axis (missing axes unpadded). */
export function pad(x: Tensor, widths: [number, number][]): Tensor {
  const shape = x.shape.map((d, i) => d + (widths[i]?.[0] ?? 0) + (widths[i]?.[1] ?? 0));
  return padTo(x, shape, x.shape.map((_, i) => widths[i]?.[0] ?? 0));
}

const concatOp = defineOp<{ axis: number; count: number }>({
  name: 'concat',
  inputs: ['a', 'b'],
  saves: {},
  infer: ([a, b], attrs) => {
    const ax = normAxis('concat', attrs.axis, a!.shape.length);
    if (a!.shape.length !== b!.shape.length || a!.shape.some((d, i) => i !== ax && d !== b!.shape[i]) || a!.dtype !== b!.dtype) {
      throw new ShapeError('concat', `cannot concatenate ${fmt(a!.shape)} ${a!.dtype} and ${fmt(b!.shape)} ${b!.dtype} along axis ${attrs.axis}`);
    }
    return [{ shape: a!.shape.map((d, i) => (i === ax ? d + b!.shape[i]! : d)), dtype: a!.dtype }];
  },
  forward(_ctx, [a, b], attrs) {
    const ax = normAxis('concat', attrs.axis, a!.rank);
    // Every element is written by one of the two blocks: no zero-fill pass.
    const out = Tensor.uninitialized(a!.shape.map((d, i) => (i === ax ? d + b!.shape[i]! : d)), a!.dtype);
    writeBlock(out, a!, a!.shape.map(() => 0));
    writeBlock(out, b!, a!.shape.map((d, i) => (i === ax ? d : 0)));
    return [out];
  },
  backward: (ctx, [g], attrs) => {
    const sa = ctx.inputShape(0), ax = normAxis('concat', attrs.axis, sa.length);
    const full = g!.shape.map((d) => [0, d] as [number, number]);
    const ra = full.map((r, i) => (i === ax ? ([0, sa[i]!] as [number, number]) : r));
    const rb = full.map((r, i) => (i === ax ? ([sa[i]!, g!.shape[i]!] as [number, number]) : r));
    return [slice(g!, ra), slice(g!, rb)];
  },
  samples: () => [{ inputs: [{ shape: [2, 3] }, { shape: [2, 4] }], attrs: { axis: 1, count: 2 } }],
});

/** Concatenates tensors along `axis`. */
export function concat(tensors: Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: no tensors given');
  let acc = tensors[0]!;
  for (let i = 1; i < tensors.length; i++) {
    const next = runOp(concatOp, [acc, tensors[i]!], { axis, count: 2 })[0]!;
    if (i > 1) acc.dispose();
    acc = next;
  }
  return tensors.length === 1 ? acc.alias() : acc;
}

/** Splits `x` along `axis` into pieces of the given sizes (views). */
export function split(x: Tensor, sizes: number[], axis = 0): Tensor[] {
  const ax = normAxis('split', axis, x.rank);
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[ax]) throw new ShapeError('split', `sizes ${fmt(sizes)} do not add up to dimension ${ax} of ${fmt(x.shape)}`);
  let start = 0;
  return sizes.map((s) => {
    const ranges = x.shape.map((d, i) => (i === ax ? ([start, start + s] as [number, number]) : ([0, d] as [number, number])));
    start += s;
    return slice(x, ranges);
  });
}
