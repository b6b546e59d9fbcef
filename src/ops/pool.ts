/**
 * Pooling over NCHW. Max pooling saves, per output, the position of the maximum inside its
 * window as one uint8 (windows up to 16x16): never the input. Average pooling saves nothing.
 */
import { ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { Conv2dGeometry } from '../backends/kernels.js';
import { convGeometry } from './conv.js';
import { contiguous } from './elementwise.js';
import { mean } from './reduce.js';
import { defineOp, runOp } from './registry.js';

export interface Pool2dOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function geometry(op: string, shape: readonly number[], o: Pool2dOptions): Conv2dGeometry {
  const [kh, kw] = typeof o.kernel === 'number' ? [o.kernel, o.kernel] : o.kernel;
  if (kh * kw > 256) throw new ShapeError(op, `window ${kh}x${kw} is larger than 256 elements`);
  return convGeometry(op, shape, kh, kw, { stride: o.stride ?? o.kernel, padding: o.padding });
}

const poolSamples = () => [
  { inputs: [{ shape: [2, 2, 4, 4] }], attrs: { kernel: 2 }, label: '2x2' },
  { inputs: [{ shape: [1, 2, 5, 5] }], attrs: { kernel: 3, stride: 2, padding: 1 }, label: '3x3 s2 p1' },
];

const maxPoolOp = defineOp<Pool2dOptions>({
  name: 'maxpool2d',
  secondOrder: false,
  inputs: ['x'],
  saves: { index: 'index' },
  infer: ([x], o) => {
    const g = geometry('maxpool2d', x!.shape, o);
    return [{ shape: [g.n, g.c, g.outH, g.outW], dtype: x!.dtype }];
  },
  forward(ctx, [x], o) {
    const g = geometry('maxpool2d', x!.shape, o);
    const xc = contiguous(x!);
    const out = Tensor.uninitialized([g.n, g.c, g.outH, g.outW], x!.dtype);
    const idx = Tensor.uninitialized(out.shape, 'uint8');
    kernels(x!.dtype).maxPool2d(xc, out, idx, g);
    ctx.save('index', idx);
    idx.dispose();
    if (xc !== x) xc.dispose();
    return [out];
  },
  backward(ctx, [gy], o) {
    return [runOp(maxPoolGradOp, [gy!, ctx.saved('index')], { ...o, inputShape: [...ctx.inputShape(0)] })[0]!];
  },
  samples: poolSamples,
});

const maxPoolGradOp = defineOp<Pool2dOptions & { inputShape: number[] }>({
  name: 'maxpool2d_grad',
  inputs: ['gy', 'index'],
  saves: {},
  infer: ([gy], a) => [{ shape: a.inputShape, dtype: gy!.dtype }],
  forward(_ctx, [gy, index], a) {
    const g = geometry('maxpool2d_grad', a.inputShape, a);
    const gc = contiguous(gy!);
    const dx = Tensor.uninitialized(a.inputShape, gy!.dtype); // the kernel writes every element
    kernels(gy!.dtype).maxPool2dGrad(gc, index!, dx, g);
    if (gc !== gy) gc.dispose();
    return [dx];
  },
});

const avgPoolOp = defineOp<Pool2dOptions>({
  name: 'avgpool2d',
  inputs: ['x'],
  saves: {},
  infer: ([x], o) => {
    const g = geometry('avgpool2d', x!.shape, o);
    return [{ shape: [g.n, g.c, g.outH, g.outW], dtype: x!.dtype }];
  },
  forward(_ctx, [x], o) {
    // Padding counts in the divisor (count_include_pad), so the op is linear with a fixed scale.
    const g = geometry('avgpool2d', x!.shape, o);
    const xc = contiguous(x!);
    const out = Tensor.uninitialized([g.n, g.c, g.outH, g.outW], x!.dtype);
    kernels(x!.dtype).avgPool2d(xc, out, g);
    if (xc !== x) xc.dispose();
    return [out];
  },
  backward(ctx, [gy], o) {
    return [runOp(avgPoolGradOp, [gy!], { ...o, inputShape: [...ctx.inputShape(0)] })[0]!];
  },
  samples: poolSamples,
});

const avgPoolGradOp = defineOp<Pool2dOptions & { inputShape: number[] }>({
  name: 'avgpool2d_grad',
  inputs: ['gy'],
  saves: {},
  infer: ([gy], a) => [{ shape: a.inputShape, dtype: gy!.dtype }],
  forward(_ctx, [gy], a) {
    const g = geometry('avgpool2d_grad', a.inputShape, a);
    const gc = contiguous(gy!);
    const dx = Tensor.empty(a.inputShape, gy!.dtype);
    kernels(gy!.dtype).avgPool2dGrad(gc, dx, g);
    if (gc !== gy) gc.dispose();
    return [dx];
  },
  backward: (_ctx, [gg], a) => [avgPool2d(gg!, a)],
  samples: () => [
    { inputs: [{ shape: [2, 2, 2, 2] }], attrs: { kernel: 2, inputShape: [2, 2, 4, 4] }, label: '2x2' },
    { inputs: [{ shape: [1, 2, 3, 3] }], attrs: { kernel: 3, stride: 2, padding: 1, inputShape: [1, 2, 5, 5] }, label: '3x3 s2 p1' },
  ],
});

export const maxPool2d = (x: Tensor, o: Pool2dOptions): Tensor => runOp(maxPoolOp, [x], o)[0]!;
export const avgPool2d = (x: Tensor, o: Pool2dOptions): Tensor => runOp(avgPoolOp, [x], o)[0]!;

/** Mean over H and W: [N, C, H, W] -> [N, C]. Saves nothing. */
export const globalAvgPool2d = (x: Tensor): Tensor => mean(x, [2, 3]);
