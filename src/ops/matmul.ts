/**
 * Matrix products. One op, `matmul`, with transpose flags on the last two axes, so that every
 * backward product is another `matmul` call that reaches the backend's GEMM without copying a
 * transposed operand.
 */
import { fmt, ShapeError, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { GemmArgs } from '../backends/kernels.js';
import { isGradEnabled } from '../autograd/mode.js';
import { contiguous } from './elementwise.js';
import { reshape } from './movement.js';
import { defineOp, runOp, type TensorMeta } from './registry.js';
import { sumTo } from './reduce.js';

export interface MatmulAttrs {
  transA?: boolean;
  transB?: boolean;
}

interface Plan {
  out: number[];
  m: number;
  n: number;
  k: number;
  batchA: number;
  batchB: number;
  batch: number;
}

function plan(a: Shape, b: Shape, t: MatmulAttrs): Plan {
  if (a.length < 2 || b.length < 2) throw new ShapeError('matmul', `operands must have rank >= 2, got ${fmt(a)} and ${fmt(b)}`);
  const [ar, ac] = [a[a.length - 2]!, a[a.length - 1]!];
  const [br, bc] = [b[b.length - 2]!, b[b.length - 1]!];
  const m = t.transA ? ac : ar, k = t.transA ? ar : ac;
  const kb = t.transB ? bc : br, n = t.transB ? br : bc;
  if (k !== kb) {
    throw new ShapeError('matmul', `inner dimensions differ: ${fmt(a)}${t.transA ? 'ᵀ' : ''} x ${fmt(b)}${t.transB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  }
  const ba = a.slice(0, -2), bb = b.slice(0, -2);
  const batchA = ba.reduce((p, d) => p * d, 1), batchB = bb.reduce((p, d) => p * d, 1);
  let batchShape: number[];
  if (batchB === 1 && bb.every((d) => d === 1)) batchShape = [...ba];
  else if (batchA === 1 && ba.every((d) => d === 1)) batchShape = [...bb];
  else if (ba.length === bb.length && ba.every((d, i) => d === bb[i])) batchShape = [...ba];
  else throw new ShapeError('matmul', `batch dimensions of ${fmt(a)} and ${fmt(b)} must match or one side must have none`);
  return { out: [...batchShape, m, n], m, n, k, batchA, batchB, batch: Math.max(batchA, batchB) };
}

const matmulOp = defineOp<MatmulAttrs>({
  name: 'matmul',
  inputs: ['a', 'b'],
  saves: { a: 'input', b: 'input' },
  infer: ([a, b], t) => {
    if (a!.dtype !== b!.dtype || (a!.dtype !== 'float32' && a!.dtype !== 'float64')) {
      throw new ShapeError('matmul', `expects two float tensors of one dtype, got ${a!.dtype} and ${b!.dtype}`);
    }
    return [{ shape: plan(a!.shape, b!.shape, t).out, dtype: a!.dtype } satisfies TensorMeta];
  },
  forward(ctx, [a, b], t) {
    ctx.save('a', a!);
    ctx.save('b', b!);
    const ac = contiguous(a!), bc = contiguous(b!);
    const [out, args] = product(ac, bc, t);
    kernels(a!.dtype).gemm(ac, bc, out, args);
    if (ac !== a) ac.dispose();
    if (bc !== b) bc.dispose();
    return [out];
  },
  backward(ctx, [g], t) {
    const sa = ctx.inputShape(0), sb = ctx.inputShape(1);
    if (ctx.needsInputGrad[0] && ctx.needsInputGrad[1] && sa.length === 2 && sb.length === 2 && !isGradEnabled()) {
      return pairedGrads(g!, ctx.saved('a'), ctx.saved('b'), t);
    }
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (ctx.needsInputGrad[0]) {
      const b = ctx.saved('b');
      const r = t.transA
        ? t.transB ? matmul(b, g!, { transA: true, transB: true }) : matmul(b, g!, { transB: true })
        : matmul(g!, b, { transB: !t.transB });
      ga = sumTo(r, sa);
    }
    if (ctx.needsInputGrad[1]) {
      const a = ctx.saved('a');
      if (sb.length === 2 && sa.length > 2 && !t.transA) {
        // Shared 2-D right operand: one GEMM over all rows instead of a batch of GEMMs plus a sum.
        const a2 = reshape(a, [-1, sa[sa.length - 1]!]);
        const g2 = reshape(g!, [-1, g!.shape[g!.rank - 1]!]);
        gb = t.transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
      } else {
        const r = t.transB
          ? t.transA ? matmul(g!, a, { transA: true, transB: true }) : matmul(g!, a, { transA: true })
          : matmul(a, g!, { transA: !t.transA });
        gb = sumTo(r, sb);
      }
    }
    return [ga, gb];
  },
  samples: () => [
    { inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], attrs: {}, label: 'NN' },
    { inputs: [{ shape: [3, 4] }, { shape: [5, 4] }], attrs: { transB: true }, label: 'NT' },
    { inputs: [{ shape: [4, 3] }, { shape: [4, 5] }], attrs: { transA: true }, label: 'TN' },
    { inputs: [{ shape: [4, 3] }, { shape: [5, 4] }], attrs: { transA: true, transB: true }, label: 'TT' },
    { inputs: [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], attrs: {}, label: 'batched' },
    { inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }], attrs: { transB: true }, label: 'shared weight' },
  ],
});

/** The output of op(a) op(b) for contiguous a and b (uninitialized) and the GEMM that fills it. */
function product(a: Tensor, b: Tensor, t: MatmulAttrs): [Tensor, GemmArgs] {
  const p = plan(a.shape, b.shape, t);
  // A shared right operand with an untransposed left one is one tall GEMM: fold the batch into rows.
  const fold = p.batchB === 1 && p.batchA > 1 && !t.transA;
  return [Tensor.uninitialized(p.out, a.dtype), {
    batch: fold ? 1 : p.batch,
    m: fold ? p.m * p.batchA : p.m,
    n: p.n,
    k: p.k,
    transA: !!t.transA,
    transB: !!t.transB,
    aStride: p.batchA === 1 ? 0 : p.m * p.k,
    bStride: p.batchB === 1 ? 0 : p.k * p.n,
    accumulate: false,
  }];
}

/**
 * Both input gradients of a 2-D product when no graph is recorded: the two GEMMs the backward's
 * matmul calls would run (the same operands, flags and shapes, so the same bits), as the two
 * indices of one parallelFor: with threads, each runs whole on its own thread in one job (a
 * Linear layer's dX and dW) instead of each splitting into its own job.
 */
function pairedGrads(g: Tensor, a: Tensor, b: Tensor, t: MatmulAttrs): [Tensor, Tensor] {
  const gc = contiguous(g), ac = contiguous(a), bc = contiguous(b);
  const ops: [Tensor, Tensor, MatmulAttrs][] = [
    t.transA ? [bc, gc, { transA: !!t.transB, transB: true }] : [gc, bc, { transB: !t.transB }],
    t.transB ? [gc, ac, { transA: true, transB: !!t.transA }] : [ac, gc, { transA: !t.transA }],
  ];
  const products = ops.map(([x, y, attrs]) => product(x, y, attrs));
  const k = kernels(g.dtype);
  const macs = products.reduce((sum, [, p]) => sum + p.m * p.n * p.k, 0);
  k.parallelFor(2, (i) => k.gemm(ops[i]![0], ops[i]![1], products[i]![0], products[i]![1]), { kind: 'gemm', units: macs });
  for (const [c, x] of [[gc, g], [ac, a], [bc, b]] as const) if (c !== x) c.dispose();
  return [products[0]![0], products[1]![0]];
}

/** Matrix product of the last two axes, batched over the leading ones; optional transposes. */
export const matmul = (a: Tensor, b: Tensor, t: MatmulAttrs = {}): Tensor => runOp(matmulOp, [a, b], t)[0]!;
