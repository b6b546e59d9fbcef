/**
 * Neural-network ops: softmax / log-softmax (save their output only), cross-entropy (saves the
 * probabilities and the labels), MSE, dropout (saves nothing: the mask is regenerated from its
 * seed in backward) and embedding (saves the ids).
 */
import { kernels } from '../backends/index.js';
import { fmt, normAxis, ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { contiguous, exp, full, mul, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { defineOp, runOp } from './registry.js';

/** Softmax or log-softmax of each row along the last axis (on a contiguous copy when x is strided). */
function softmaxRows(x: Tensor, log: boolean): Tensor {
  const xc = contiguous(x);
  const y = Tensor.uninitialized(x.shape, x.dtype);
  const n = x.shape[x.rank - 1]!;
  kernels(x.dtype).softmax(xc, y, n === 0 ? 0 : x.size / n, n, log);
  if (xc !== x) xc.dispose();
  return y;
}

const lastAxisOnly = (op: string, rank: number, axis: number): void => {
  if (normAxis(op, axis, rank) !== rank - 1) throw new ShapeError(op, `only the last axis is supported (got axis ${axis} for rank ${rank}); permute first`);
};

const softmaxOp = defineOp<{ axis: number }>({
  name: 'softmax',
  inputs: ['x'],
  saves: { y: 'output' },
  infer: ([x], a) => {
    lastAxisOnly('softmax', x!.shape.length, a.axis);
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x]) {
    const y = softmaxRows(x!, false);
    ctx.save('y', y);
    return [y];
  },
  backward(ctx, [g], a) {
    // dx = y * (g - sum(g * y)) along the axis.
    const y = ctx.saved('y');
    return [mul(y, sub(g!, sum(mul(g!, y), [a.axis], true)))];
  },
  samples: () => [{ inputs: [{ shape: [3, 5] }], attrs: { axis: -1 } }],
});

const logSoftmaxOp = defineOp<{ axis: number }>({
  name: 'log_softmax',
  inputs: ['x'],
  saves: { y: 'output' },
  infer: ([x], a) => {
    lastAxisOnly('log_softmax', x!.shape.length, a.axis);
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  forward(ctx, [x]) {
    const y = softmaxRows(x!, true);
    ctx.save('y', y);
    return [y];
  },
  backward(ctx, [g], a) {
    // dx = g - softmax * sum(g) along the axis.
    return [sub(g!, mul(exp(ctx.saved('y')), sum(g!, [a.axis], true)))];
  },
  samples: () => [{ inputs: [{ shape: [3, 5] }], attrs: { axis: -1 } }],
});

export const softmax = (x: Tensor, axis = -1): Tensor => runOp(softmaxOp, [x], { axis })[0]!;
export const logSoftmax = (x: Tensor, axis = -1): Tensor => runOp(logSoftmaxOp, [x], { axis })[0]!;

const labelSample = (n: number, c: number) => ({ shape: [n], dtype: 'int32' as const, values: (r: { int(n: number): number }) => Array.from({ length: n }, () => r.int(c)) });

/** Mean cross-entropy of logits [N, C] against int32 class labels [N]. */
const crossEntropyOp = defineOp<Record<string, never>>({
  name: 'cross_entropy',
  secondOrder: false,
  inputs: ['logits', 'labels'],
  // The gradient is probs - onehot: small differences of the probabilities, kept exact.
  saves: { probs: { role: 'output', exact: true }, labels: 'index' },
  differentiable: [true, false],
  infer: ([x, y]) => {
    if (x!.shape.length !== 2 || y!.shape.length !== 1 || y!.shape[0] !== x!.shape[0]) {
      throw new ShapeError('cross_entropy', `expects logits [N, C] and labels [N], got ${fmt(x!.shape)} and ${fmt(y!.shape)}`);
    }
    if (y!.dtype !== 'int32') throw new ShapeError('cross_entropy', `labels must be int32, got ${y!.dtype}`);
    return [{ shape: [], dtype: x!.dtype }];
  },
  forward(ctx, [x, y]) {
    const c = x!.shape[1]!;
    const yc = contiguous(y!), labels = yc.data();
    for (let row = 0; row < labels.length; row++) {
      const label = labels[row]!;
      if (!(label >= 0 && label < c)) throw new RangeError(`cross_entropy: label ${label} at row ${row} is outside [0, ${c})`);
    }
    const xc = contiguous(x!);
    const probs = Tensor.uninitialized(x!.shape, x!.dtype);
    const loss = kernels(x!.dtype).crossEntropy(xc, yc, probs);
    if (xc !== x) xc.dispose();
    ctx.save('probs', probs);
    ctx.save('labels', yc);
    probs.dispose();
    if (yc !== y) yc.dispose();
    return [full([], loss, x!.dtype)];
  },
  backward(ctx, [g]) {
    return [runOp(crossEntropyGradOp, [g!, ctx.saved('probs'), ctx.saved('labels')], {})[0]!, null];
  },
  samples: () => [{ inputs: [{ shape: [4, 5] }, labelSample(4, 5)], attrs: {} }],
});

/** (probs - onehot(labels)) * g / N. */
const crossEntropyGradOp = defineOp<Record<string, never>>({
  name: 'cross_entropy_grad',
  inputs: ['g', 'probs', 'labels'],
  saves: {},
  infer: ([, p]) => [{ shape: p!.shape, dtype: p!.dtype }],
  forward(_ctx, [g, p, y]) {
    const out = Tensor.uninitialized(p!.shape, p!.dtype);
    kernels(p!.dtype).crossEntropyGrad(p!, y!, out, g!.item() / p!.shape[0]!);
    return [out];
  },
});

/** Mean cross-entropy of logits [N, C] with int32 labels [N]. */
export const crossEntropy = (logits: Tensor, labels: Tensor): Tensor => runOp(crossEntropyOp, [logits, labels], {})[0]!;

/** Mean squared error. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  const d = sub(pred, target);
  const sq = mul(d, d);
  const m = mean(sq);
  d.dispose();
  sq.dispose();
  return m;
}

// ---------------------------------------------------------------------------------------------

export interface DropoutAttrs {
  p: number;
  /** Key of the counter-based mask: the same seed gives the same mask, in forward and backward. */
  seed: number;
}

function dropoutApply(x: Tensor, a: DropoutAttrs): Tensor {
  if (!(a.p >= 0 && a.p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${a.p}`);
  const xc = contiguous(x);
  const out = Tensor.uninitialized(x.shape, x.dtype);
  kernels(x.dtype).dropout(xc, out, a.p, a.seed);
  if (xc !== x) xc.dispose();
  return out;
}

const dropoutOp = defineOp<DropoutAttrs>({
  name: 'dropout',
  inputs: ['x'],
  saves: {},
  infer: ([x]) => [{ shape: x!.shape, dtype: x!.dtype }],
  forward: (_ctx, [x], a) => [dropoutApply(x!, a)],
  // The mask is a function of the seed alone, so backward is the same masking applied to g.
  backward: (_ctx, [g], a) => [dropout(g!, a.p, a.seed)],
  samples: () => [{ inputs: [{ shape: [4, 5] }], attrs: { p: 0.3, seed: 7 } }],
});

/** Inverted dropout with a reproducible mask keyed by `seed`. */
export const dropout = (x: Tensor, p: number, seed: number): Tensor => runOp(dropoutOp, [x], { p, seed })[0]!;

// ---------------------------------------------------------------------------------------------

const embeddingOp = defineOp<Record<string, never>>({
  name: 'embedding',
  secondOrder: false,
  inputs: ['ids', 'table'],
  saves: { ids: 'index' },
  differentiable: [false, true],
  infer: ([ids, table]) => {
    if (ids!.dtype !== 'int32') throw new ShapeError('embedding', `ids must be int32, got ${ids!.dtype}`);
    if (table!.shape.length !== 2) throw new ShapeError('embedding', `table must be [V, D], got ${fmt(table!.shape)}`);
    return [{ shape: [...ids!.shape, table!.shape[1]!], dtype: table!.dtype }];
  },
  forward(ctx, [ids, table]) {
    const [V, D] = table!.shape as [number, number];
    const ic = contiguous(ids!), tc = contiguous(table!);
    const iv = ic.data();
    for (let i = 0; i < iv.length; i++) {
      const id = iv[i]!;
      if (!(id >= 0 && id < V)) throw new RangeError(`embedding: id ${id} at position ${i} is outside the table's ${V} rows`);
    }
    const out = Tensor.uninitialized([...ids!.shape, D], table!.dtype);
    kernels(table!.dtype).gatherRows(tc, ic, out);
    ctx.save('ids', ic);
    if (ic !== ids) ic.dispose();
    if (tc !== table) tc.dispose();
    return [out];
  },
  backward(ctx, [g]) {
    return [null, runOp(embeddingGradOp, [g!, ctx.saved('ids')], { rows: ctx.inputShape(1)[0]! })[0]!];
  },
  samples: () => [{ inputs: [{ shape: [2, 3], dtype: 'int32', values: (r) => Array.from({ length: 6 }, () => r.int(4)) }, { shape: [4, 3] }], attrs: {} }],
});

/** Scatter-adds g rows into a [rows, D] table gradient. */
const embeddingGradOp = defineOp<{ rows: number }>({
  name: 'embedding_grad',
  inputs: ['g', 'ids'],
  saves: {},
  infer: ([g], a) => [{ shape: [a.rows, g!.shape[g!.shape.length - 1]!], dtype: g!.dtype }],
  forward(_ctx, [g, ids], a) {
    const D = g!.shape[g!.rank - 1]!;
    const gc = contiguous(g!);
    const out = Tensor.empty([a.rows, D], g!.dtype);
    kernels(g!.dtype).scatterAddRows(gc, ids!, out);
    if (gc !== g) gc.dispose();
    return [out];
  },
});

/** Looks up rows of `table` [V, D] for int32 `ids`: output [...ids.shape, D]. */
export const embedding = (ids: Tensor, table: Tensor): Tensor => runOp(embeddingOp, [ids, table], {})[0]!;
