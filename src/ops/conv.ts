/**
 * 2-D convolution (NCHW, OIHW weights) with stride, padding, dilation and groups, as implicit
 * GEMMs: kernels().convGemm packs the im2col columns straight from the image into the GEMM, so no
 * columns are written out. The forward and the weight gradient always run so; the data gradient
 * is either a convolution of gy with the flipped window (convGemm again) or a GEMM into columns
 * and col2im, chosen per shape by inputGradAlgorithm. Blocks of images run through kernels().parallelFor,
 * one block per thread. Backward recomputes the columns from the saved input, so the op saves
 * only its input (and its weight, a parameter), as the ACT save policy requires.
 */
import { fmt, ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';
import type { Conv2dGeometry, Kernels } from '../backends/kernels.js';
import { contiguous } from './elementwise.js';
import { defineOp, runOp, type TensorMeta } from './registry.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

export function convGeometry(op: string, x: readonly number[], kh: number, kw: number, o: Conv2dOptions): Conv2dGeometry {
  if (x.length !== 4) throw new ShapeError(op, `input must be NCHW (rank 4), got ${fmt(x)}`);
  const [strideH, strideW] = pair(o.stride, 1), [padH, padW] = pair(o.padding, 0), [dilationH, dilationW] = pair(o.dilation, 1);
  const [n, c, h, w] = x as [number, number, number, number];
  const outH = Math.floor((h + 2 * padH - dilationH * (kh - 1) - 1) / strideH) + 1;
  const outW = Math.floor((w + 2 * padW - dilationW * (kw - 1) - 1) / strideW) + 1;
  if (outH <= 0 || outW <= 0 || strideH < 1 || strideW < 1 || dilationH < 1 || dilationW < 1 || padH < 0 || padW < 0) {
    throw new ShapeError(op, `window ${kh}x${kw} (stride ${strideH},${strideW}, padding ${padH},${padW}, dilation ${dilationH},${dilationW}) does not fit input ${fmt(x)}`);
  }
  return { n, c, h, w, kh, kw, strideH, strideW, padH, padW, dilationH, dilationW, outH, outW };
}

function inferConv(x: TensorMeta, w: TensorMeta, b: TensorMeta | null, o: Conv2dOptions): Conv2dGeometry & { o: number } {
  if (w.shape.length !== 4) throw new ShapeError('conv2d', `weight must be OIHW (rank 4), got ${fmt(w.shape)}`);
  const groups = o.groups ?? 1;
  const g = convGeometry('conv2d', x.shape, w.shape[2]!, w.shape[3]!, o);
  const out = w.shape[0]!;
  if (g.c % groups !== 0 || out % groups !== 0 || w.shape[1] !== g.c / groups) {
    throw new ShapeError('conv2d', `input ${fmt(x.shape)} and weight ${fmt(w.shape)} do not agree for groups=${groups} (weight must be [O, C/groups, kh, kw], C and O divisible by groups)`);
  }
  if (b && (b.shape.length !== 1 || b.shape[0] !== out)) throw new ShapeError('conv2d', `bias must be [${out}], got ${fmt(b.shape)}`);
  if (x.dtype !== w.dtype || (x.dtype !== 'float32' && x.dtype !== 'float64')) throw new ShapeError('conv2d', `expects float input and weight of one dtype, got ${x.dtype} and ${w.dtype}`);
  return { ...g, o: out };
}

/**
 * Images whose columns the col2im data gradient computes together (one batched GEMM, split across
 * threads by image: a 16-channel layer's per-image GEMM has only 16 rows). A fixed count, not a
 * share of the batch, so the workspace does not grow with the batch size (step memory stays affine
 * in the batch, as the activation-memory planner models it); capped at COLS_BUDGET elements for
 * large images. Each thread has its own chunk's columns, so this is per thread.
 */
const IMAGES_PER_CHUNK = 4;
const COLS_BUDGET = 1 << 21;
/**
 * Small images get chunks of 8, 16, ... images while their columns stay within this many
 * elements (640 KB: within a core's L2 next to the GEMM's packing): LeNet-5's layers then run in
 * 8 chunks instead of 16, half the kernel calls that the calling thread issues and records.
 */
const SMALL_CHUNK_COLS = 160_000;
/**
 * Partial sums of the weight gradient (runs of images): the most threads conv2d_grad_weight can
 * use, and the bound on its extra workspace (this many weight-sized buffers).
 */
const PARTIAL_SUMS = 8;

/**
 * How conv2d's data gradient runs: 'implicit', a stride-1 convolution of gy with the flipped
 * window (convGemm, every element of dx written once), or 'col2im', a GEMM into columns that
 * col2im adds into a zeroed dx.
 */
export type InputGradAlgorithm = 'implicit' | 'col2im';

/** Whether the data gradient can be a stride-1 convolution of gy with the flipped window (its padding dilation*(k-1) - pad must be >= 0). */
const flipConvFits = (g: Conv2dGeometry): boolean =>
  g.strideH === 1 && g.strideW === 1 && g.padH <= g.dilationH * (g.kh - 1) && g.padW <= g.dilationW * (g.kw - 1);

/**
 * The data gradient's algorithm for geometry g with `cg` input channels per group: the one place
 * the choice is made. Measured with `slimgrad bench conv` (bench/conv.ts; BENCHMARKS.md, issue 17): the flipped
 * convolution wins from 16 channels per group when dx has no more pixels than gy ('same'
 * convolutions: ResNet-20's stride-1 layers, 1x1 layers); with fewer channels its GEMM has fewer
 * rows than a register tile (LeNet-5's and the CNN's first layers: 1.5-1.8x slower) and with a
 * 'valid' window it multiplies over gy's zero border too (the CNN's second layer: 1.15x slower).
 */
export function inputGradAlgorithm(g: Conv2dGeometry, cg: number): InputGradAlgorithm {
  if (!flipConvFits(g)) return 'col2im';
  return cg >= 16 && g.h * g.w <= g.outH * g.outW ? 'implicit' : 'col2im';
}

/** Splits images [0, n) into `blocks` contiguous runs; block b is [first, first + count). */
function imageBlock(n: number, blocks: number, b: number): [first: number, count: number] {
  const first = Math.floor((n * b) / blocks);
  return [first, Math.floor((n * (b + 1)) / blocks) - first];
}

/** Runs body(first, count) for one block of images per thread (parallelFor), each block's kernel calls one job. */
function forImageBlocks(k: Kernels, n: number, body: (first: number, count: number) => void): void {
  const blocks = k.parallelSlots(n);
  k.parallelFor(blocks, (b) => {
    const [first, count] = imageBlock(n, blocks, b);
    if (count > 0) body(first, count);
  });
}

/** Images per chunk of the col2im data gradient; 1 with groups (a batched GEMM's outputs would not be evenly spaced in NCHW). */
function imagesPerChunk(g: Conv2dGeometry, groups: number): number {
  if (groups !== 1) return 1;
  const perImage = Math.max(1, g.c * g.kh * g.kw * g.outH * g.outW);
  let images = IMAGES_PER_CHUNK;
  while (2 * images * perImage <= SMALL_CHUNK_COLS) images *= 2;
  return Math.max(1, Math.min(g.n, images, Math.floor(COLS_BUDGET / perImage)));
}

/**
 * Runs `body(img0, count, cols)` for every chunk of images (imagesPerChunk), with cols a
 * [count * cg*kh*kw, outH*outW] columns buffer of the calling thread: the chunks are cut into one
 * contiguous run per thread (parallelFor), each run's chunks in order on its thread's buffer.
 */
function forChunks(dtype: Tensor['dtype'], g: Conv2dGeometry, groups: number, body: (img0: number, count: number, cols: Tensor) => void): void {
  const kk = (g.c / groups) * g.kh * g.kw, hw = g.outH * g.outW;
  const size = imagesPerChunk(g, groups), chunks = Math.ceil(g.n / size);
  const k = kernels(dtype);
  const cols = Tensor.uninitialized([k.parallelSlots(chunks) * size * kk, hw], dtype, 'workspace');
  k.parallelFor(chunks, (c, slot) => {
    const mine = block(cols, slot * size * kk * hw, size * kk, hw);
    body(c * size, Math.min(size, g.n - c * size), mine);
    mine.dispose();
  });
  cols.dispose();
}

/** A [rows, cols] view at element `offset` of contiguous `t` (a GEMM operand). */
const block = (t: Tensor, offset: number, rows: number, cols: number): Tensor => t.view([rows, cols], undefined, t.offset + offset);
/** The flat view of contiguous `t` from element `offset` that holds `count` blocks of `size` elements, `stride` apart (a convGemm operand). */
const strided = (t: Tensor, offset: number, count: number, stride: number, size: number): Tensor => t.view([(count - 1) * stride + size], undefined, t.offset + offset);

const conv2dOp = defineOp<Conv2dOptions>({
  name: 'conv2d',
  secondOrder: false,
  inputs: ['x', 'w', 'b?'],
  saves: { x: 'input', w: 'input' },
  infer: ([x, w, b], o) => {
    const g = inferConv(x!, w!, b, o);
    return [{ shape: [g.n, g.o, g.outH, g.outW], dtype: x!.dtype }];
  },
  forward(ctx, [x, w, b], o) {
    const g = inferConv(x!, w!, b, o);
    const groups = o.groups ?? 1;
    ctx.save('x', x!);
    ctx.save('w', w!);
    const xc = contiguous(x!), wc = contiguous(w!);
    const out = Tensor.uninitialized([g.n, g.o, g.outH, g.outW], x!.dtype);
    const og = g.o / groups, kk = (g.c / groups) * g.kh * g.kw, hw = g.outH * g.outW;
    const k = kernels(x!.dtype);
    const bc = b ? contiguous(b) : null;
    const cg = g.c / groups;
    forImageBlocks(k, g.n, (img0, count) => {
      for (let grp = 0; grp < groups; grp++) {
        const wv = block(wc, grp * og * kk, og, kk), ov = strided(out, (img0 * g.o + grp * og) * hw, count, g.o * hw, og * hw);
        k.convGemm(wv, xc, ov, g, { img: img0, images: count, c0: grp * cg, cg, m: og, aStride: 0, cStride: g.o * hw, weightGrad: false, flip: false, accumulate: false });
        wv.dispose();
        ov.dispose();
      }
      if (bc) {
        // The bias of these images' channels, in the same job (channelAdd is elementwise: the same bits as over the whole output).
        const chunk = block(out, img0 * g.o * hw, count * g.o, hw);
        k.channelAdd(chunk, bc, chunk, { outer: count, channels: g.o, inner: hw });
        chunk.dispose();
      }
    });
    if (bc && bc !== b) bc.dispose();
    if (xc !== x) xc.dispose();
    if (wc !== w) wc.dispose();
    return [out];
  },
  backward(ctx, [gy], o) {
    const w = ctx.saved('w');
    const needX = ctx.needsInputGrad[0], needW = ctx.needsInputGrad[1], needB = ctx.needsInputGrad[2];
    // dw first, and the (possibly decompressed) copy of x freed before dx is allocated: the two
    // input-sized tensors are never live together (the step's peak under compression).
    // The bias gradient comes with dw when both are needed (its per-image sums in the same job).
    let dw: Tensor | null = null, db: Tensor | null = null;
    if (needW) {
      const x = ctx.saved('x');
      [dw, db = null] = runOp(conv2dGradWeightOp, [gy!, x], { ...o, weightShape: [...w.shape], bias: needB });
      x.dispose();
    }
    const dx = needX ? runOp(conv2dGradInputOp, [gy!, w], { ...o, inputShape: [...ctx.inputShape(0)] })[0]! : null;
    if (needB && !db) db = sumChannels(gy!);
    return [dx, dw, db];
  },
  samples: () => [
    { inputs: [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }], attrs: {}, label: 'plain' },
    { inputs: [{ shape: [1, 2, 7, 6] }, { shape: [3, 2, 3, 2] }, null], attrs: { stride: [2, 1], padding: [1, 2] }, label: 'stride+padding' },
    { inputs: [{ shape: [1, 2, 7, 7] }, { shape: [2, 2, 3, 3] }, null], attrs: { dilation: 2, padding: 1 }, label: 'dilation' },
    { inputs: [{ shape: [2, 4, 5, 5] }, { shape: [6, 2, 3, 3] }, { shape: [6] }], attrs: { groups: 2, padding: 1 }, label: 'groups' },
  ],
});

/** Sum of gy over N, H, W: the bias gradient (over H·W, then over N). */
function sumChannels(gy: Tensor): Tensor {
  const [n, c, h, w] = gy.shape as [number, number, number, number];
  const gc = contiguous(gy);
  const perImage = Tensor.uninitialized([n, c], gy.dtype, 'workspace');
  kernels(gy.dtype).reduce('sum', gc, perImage, { outer: n * c, reduced: h * w, inner: 1 }, null);
  if (gc !== gy) gc.dispose();
  return channelTotals(perImage);
}

/** The bias gradient from gy's per-image channel sums [N, C] (summed over N; frees them). */
function channelTotals(perImage: Tensor): Tensor {
  const [n, c] = perImage.shape as [number, number];
  const out = Tensor.uninitialized([c], perImage.dtype);
  kernels(perImage.dtype).reduce('sum', perImage, out, { outer: 1, reduced: n, inner: c }, null);
  perImage.dispose();
  return out;
}

type GradInputAttrs = Conv2dOptions & { inputShape: number[] };
/** With `bias`, the op also returns the bias gradient (sumChannels of gy, its per-image sums computed in dw's job). */
type GradWeightAttrs = Conv2dOptions & { weightShape: number[]; bias?: boolean };

/** dx: a convolution of gy with the flipped window, or col2im(Wᵀ gy) per chunk of images and group (inputGradAlgorithm). Not itself differentiable. */
const conv2dGradInputOp = defineOp<GradInputAttrs>({
  name: 'conv2d_grad_input',
  inputs: ['gy', 'w'],
  saves: {},
  infer: ([gy], a) => [{ shape: a.inputShape, dtype: gy!.dtype }],
  forward(_ctx, [gy, w], a) {
    const groups = a.groups ?? 1;
    const g = convGeometry('conv2d_grad_input', a.inputShape, w!.shape[2]!, w!.shape[3]!, a);
    const o = w!.shape[0]!, og = o / groups, cg = g.c / groups, kk = cg * g.kh * g.kw, hw = g.outH * g.outW;
    const gc = contiguous(gy!), wc = contiguous(w!);
    const k = kernels(gy!.dtype);
    if (inputGradAlgorithm(g, cg) === 'implicit') {
      const dx = flipConvInput(k, gc, wc, g, groups);
      if (gc !== gy) gc.dispose();
      if (wc !== w) wc.dispose();
      return [dx];
    }
    const dx = Tensor.empty(a.inputShape, gy!.dtype); // col2im adds into it
    forChunks(gy!.dtype, g, groups, (img0, count, cols) => {
      for (let grp = 0; grp < groups; grp++) {
        const wv = block(wc, grp * og * kk, og, kk);
        const gv = block(gc, (img0 * o + grp * og) * hw, count * og, hw);
        k.gemm(wv, gv, cols, { batch: count, m: kk, n: hw, k: og, transA: true, transB: false, aStride: 0, bStride: o * hw, accumulate: false });
        k.col2im(cols, dx, g, img0, grp * cg, cg, count);
        wv.dispose();
        gv.dispose();
      }
    });
    if (gc !== gy) gc.dispose();
    if (wc !== w) wc.dispose();
    return [dx];
  },
});

/**
 * The data gradient of a stride-1 conv as a convolution of gy with the window flipped and the
 * channel axes of w swapped: dx[c, y, x] = sum over (o, i, j) of w[o, c, i, j] gy[o, y + padH -
 * i*dilationH, x + padW - j*dilationW], i.e. convGemm over gy (padding dilation*(k-1) - pad, flip)
 * with A = w as [C/groups, O/groups * kh*kw] per group. Every element of dx is written once: no
 * zero-fill, no columns, no col2im.
 */
function flipConvInput(k: Kernels, gy: Tensor, w: Tensor, g: Conv2dGeometry, groups: number): Tensor {
  const [o, cg, kh, kw] = w.shape as [number, number, number, number];
  const og = o / groups, taps = kh * kw, plane = g.h * g.w;
  const wt = Tensor.uninitialized([groups, cg, og, taps], w.dtype, 'workspace');
  const swapped = w.view([groups, cg, og, taps], [og * cg * taps, taps, cg * taps, 1]);
  k.copy(swapped, wt);
  swapped.dispose();
  const gyGeometry: Conv2dGeometry = {
    n: g.n, c: o, h: g.outH, w: g.outW, kh, kw, strideH: 1, strideW: 1,
    padH: g.dilationH * (kh - 1) - g.padH, padW: g.dilationW * (kw - 1) - g.padW,
    dilationH: g.dilationH, dilationW: g.dilationW, outH: g.h, outW: g.w,
  };
  const dx = Tensor.uninitialized([g.n, g.c, g.h, g.w], gy.dtype);
  forImageBlocks(k, g.n, (img0, count) => {
    for (let grp = 0; grp < groups; grp++) {
      const av = block(wt, grp * cg * og * taps, cg, og * taps), dv = strided(dx, (img0 * g.c + grp * cg) * plane, count, g.c * plane, cg * plane);
      k.convGemm(av, gy, dv, gyGeometry, { img: img0, images: count, c0: grp * og, cg: og, m: cg, aStride: 0, cStride: g.c * plane, weightGrad: false, flip: true, accumulate: false });
      av.dispose();
      dv.dispose();
    }
  });
  wt.dispose();
  return dx;
}

/** dW = sum over images of gy colsᵀ (convGemm per run of images, then a sum over the runs). Not itself differentiable. */
const conv2dGradWeightOp = defineOp<GradWeightAttrs>({
  name: 'conv2d_grad_weight',
  inputs: ['gy', 'x'],
  saves: {},
  infer: ([gy], a) => [{ shape: a.weightShape, dtype: gy!.dtype }, ...(a.bias ? [{ shape: [a.weightShape[0]!], dtype: gy!.dtype }] : [])],
  forward(_ctx, [gy, x], a) {
    const groups = a.groups ?? 1;
    const [o, , kh, kw] = a.weightShape as [number, number, number, number];
    const g = convGeometry('conv2d_grad_weight', x!.shape, kh, kw, a);
    const og = o / groups, kk = (g.c / groups) * kh * kw, hw = g.outH * g.outW;
    const gc = contiguous(gy!), xc = contiguous(x!);
    const k = kernels(gy!.dtype);
    const perImage = a.bias ? Tensor.uninitialized([g.n, o], gy!.dtype, 'workspace') : null;
    // Each run of images sums its products gy_i cols_iᵀ in image order into its own partial sum
    // (one convGemm per group, which writes it: no zero-fill); dw is the sum of the partials in
    // run order. The runs are fixed by the batch, not the thread count, so any number of threads
    // gives the same bits.
    const runs = Math.min(PARTIAL_SUMS, g.n);
    const dw = Tensor.uninitialized(a.weightShape, gy!.dtype);
    const partials = runs > 1 ? Tensor.uninitialized([runs, o * kk], gy!.dtype, 'workspace') : dw;
    k.parallelFor(runs, (run) => {
      const [img0, count] = imageBlock(g.n, runs, run);
      if (perImage) {
        // These images' rows of sumChannels' first reduce (each row's sum is the same whoever computes it).
        const rows = block(gc, img0 * o * hw, count * o, hw), sums = block(perImage, img0 * o, count * o, 1);
        k.reduce('sum', rows, sums, { outer: count * o, reduced: hw, inner: 1 }, null);
        rows.dispose();
        sums.dispose();
      }
      for (let grp = 0; grp < groups; grp++) {
        const gv = strided(gc, (img0 * o + grp * og) * hw, count, o * hw, og * hw), pv = block(partials, run * o * kk + grp * og * kk, og, kk);
        k.convGemm(gv, xc, pv, g, { img: img0, images: count, c0: grp * (g.c / groups), cg: g.c / groups, m: og, aStride: o * hw, cStride: 0, weightGrad: true, flip: false, accumulate: false });
        gv.dispose();
        pv.dispose();
      }
    });
    if (partials !== dw) {
      k.reduce('sum', partials, dw, { outer: 1, reduced: runs, inner: o * kk }, null);
      partials.dispose();
    }
    if (gc !== gy) gc.dispose();
    if (xc !== x) xc.dispose();
    return perImage ? [dw, channelTotals(perImage)] : [dw];
  },
});

/** 2-D convolution of x [N, C, H, W] with w [O, C/groups, kh, kw] (+ bias [O]). */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  return runOp(conv2dOp, [x, w, b], o)[0]!;
}
