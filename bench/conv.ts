/**
 * The measurements behind conv2d's algorithms (src/ops/conv.ts): for each conv layer of ResNet-20,
 * the engine CNN and LeNet-5 (batch 64) and a few extra shapes (1x1, large maps), the kernels of
 * each direction, implicit vs materialized columns, on the wasm backend:
 *   forward  convGemm                                vs  im2col + batched GEMM per chunk of 4 images
 *   weight   convGemm (weightGrad)                   vs  im2col + batched GEMM + sum over the chunk
 *   input    copy of w (channels swapped) + convGemm  vs  batched GEMM (Wᵀ gy) + col2im into a zeroed dx
 *            over gy with the flipped window (stride-1 layers only)
 * The two alternate within each of ROUNDS rounds; the round with the least CPU time counts (CPU
 * time, not wall: on a shared machine it leaves out the time other processes take). One thread.
 *
 *   slimgrad bench conv [--json]   (= node --import tsx bench/main.ts conv)
 *
 * A table, one row per shape and direction: CPU ms per batch for each, their ratio, and what
 * conv2d uses; with --json then one object `{suite: 'conv', rows}`.
 */
import { parseArgs } from 'node:util';
import { kernels, setThreads, useFastestBackend } from '../src/backends/index.js';
import type { Conv2dGeometry } from '../src/backends/kernels.js';
import { fromValues, Tensor } from '../src/core/tensor.js';
import { convGeometry, inputGradAlgorithm, type Conv2dOptions } from '../src/ops/conv.js';
import { Rng } from '../src/util/rng.js';
import { printJson, printTable } from '../src/cli/command.js';

interface Shape {
  label: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  o: Conv2dOptions;
}

const N = 64;
const SHAPES: Shape[] = [
  { label: 'resnet20 stem 3->16 32x32', x: [N, 3, 32, 32], w: [16, 3, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 16->16 32x32', x: [N, 16, 32, 32], w: [16, 16, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 16->32 s2 32x32', x: [N, 16, 32, 32], w: [32, 16, 3, 3], o: { padding: 1, stride: 2 } },
  { label: 'resnet20 1x1 16->32 s2', x: [N, 16, 32, 32], w: [32, 16, 1, 1], o: { stride: 2 } },
  { label: 'resnet20 32->32 16x16', x: [N, 32, 16, 16], w: [32, 32, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 32->64 s2 16x16', x: [N, 32, 16, 16], w: [64, 32, 3, 3], o: { padding: 1, stride: 2 } },
  { label: 'resnet20 1x1 32->64 s2', x: [N, 32, 16, 16], w: [64, 32, 1, 1], o: { stride: 2 } },
  { label: 'resnet20 64->64 8x8', x: [N, 64, 8, 8], w: [64, 64, 3, 3], o: { padding: 1 } },
  { label: 'cnn 1->32 28x28 valid', x: [N, 1, 28, 28], w: [32, 1, 3, 3], o: {} },
  { label: 'cnn 32->64 13x13 valid', x: [N, 32, 13, 13], w: [64, 32, 3, 3], o: {} },
  { label: 'lenet 1->6 5x5 28x28', x: [N, 1, 28, 28], w: [6, 1, 5, 5], o: { padding: 2 } },
  { label: 'lenet 6->16 5x5 14x14', x: [N, 6, 14, 14], w: [16, 6, 5, 5], o: {} },
  { label: '1x1 64->64 8x8', x: [N, 64, 8, 8], w: [64, 64, 1, 1], o: {} },
  { label: '1x1 16->16 32x32', x: [N, 16, 32, 32], w: [16, 16, 1, 1], o: {} },
  { label: 'large 3->16 96x96', x: [16, 3, 96, 96], w: [16, 3, 3, 3], o: { padding: 1 } },
  { label: 'large 16->16 64x64', x: [16, 16, 64, 64], w: [16, 16, 3, 3], o: { padding: 1 } },
];
const CHUNK = 4;
const ROUNDS = 9;

const random = (shape: number[], seed: number): Tensor => {
  const rng = new Rng(seed, 1), n = shape.reduce((a, b) => a * b, 1);
  return fromValues(Float32Array.from({ length: n }, () => rng.normal()), shape);
};

/** Least CPU ms of fn over ROUNDS rounds, for a and b alternating. */
function compare(a: () => void, b: () => void): [number, number] {
  const best = [Infinity, Infinity];
  a();
  b();
  for (let r = 0; r < ROUNDS; r++) {
    [a, b].forEach((f, i) => {
      const c0 = process.cpuUsage();
      f();
      const c = process.cpuUsage(c0);
      best[i] = Math.min(best[i]!, (c.user + c.system) / 1000);
    });
  }
  return best as [number, number];
}

/** The three directions of one layer: [implicit, materialized] CPU ms each (input null where only col2im applies). */
function layer(k: ReturnType<typeof kernels>, s: Shape, g: Conv2dGeometry): Record<'forward' | 'weight' | 'input', [number, number] | null> {
  const [n, c] = s.x, [o, , kh, kw] = s.w, kk = c * kh * kw, hw = g.outH * g.outW;
  const x = random(s.x, 1), w = random([o, kk], 2), gy = random([n, o, hw], 3);
  const out = Tensor.empty([n, o, hw]), dw = Tensor.empty([o, kk]), dx = Tensor.empty(s.x);
  const cols = Tensor.empty([CHUNK * kk, hw]), products = Tensor.empty([CHUNK * o, kk]), sum = Tensor.empty([o, kk]);
  const view = (t: Tensor, offset: number, rows: number, cols: number) => t.view([rows, cols], undefined, t.offset + offset);
  const chunks = (body: (img0: number) => void) => {
    for (let i = 0; i < n; i += CHUNK) body(i);
  };
  const forward = compare(
    () => k.convGemm(w, x, out, g, { img: 0, images: n, c0: 0, cg: c, m: o, aStride: 0, cStride: o * hw, weightGrad: false, flip: false, accumulate: false }),
    () => chunks((i) => {
      k.im2col(x, cols, g, i, 0, c, CHUNK);
      const ov = view(out, i * o * hw, CHUNK * o, hw);
      k.gemm(w, cols, ov, { batch: CHUNK, m: o, n: hw, k: kk, transA: false, transB: false, aStride: 0, bStride: kk * hw, accumulate: false });
      ov.dispose();
    }),
  );
  const weight = compare(
    () => k.convGemm(gy, x, dw, g, { img: 0, images: n, c0: 0, cg: c, m: o, aStride: o * hw, cStride: 0, weightGrad: true, flip: false, accumulate: false }),
    () => chunks((i) => {
      k.im2col(x, cols, g, i, 0, c, CHUNK);
      const gv = view(gy, i * o * hw, CHUNK * o, hw);
      k.gemm(gv, cols, products, { batch: CHUNK, m: o, n: kk, k: hw, transA: false, transB: true, aStride: o * hw, bStride: kk * hw, accumulate: false });
      k.reduce('sum', products, sum, { outer: 1, reduced: CHUNK, inner: o * kk }, null);
      k.binary('add', dw, sum, dw);
      gv.dispose();
    }),
  );
  let input: [number, number] | null = null;
  if (g.strideH === 1 && g.padH <= kh - 1) {
    const wt = Tensor.empty([c, o * kh * kw]);
    const gyGeometry: Conv2dGeometry = { n, c: o, h: g.outH, w: g.outW, kh, kw, strideH: 1, strideW: 1, padH: kh - 1 - g.padH, padW: kw - 1 - g.padW, dilationH: 1, dilationW: 1, outH: g.h, outW: g.w };
    input = compare(
      () => {
        const swapped = w.view([c, o, kh * kw], [kh * kw, kk, 1]);
        k.copy(swapped, wt);
        swapped.dispose();
        k.convGemm(wt, gy, dx, gyGeometry, { img: 0, images: n, c0: 0, cg: o, m: c, aStride: 0, cStride: c * g.h * g.w, weightGrad: false, flip: true, accumulate: false });
      },
      () => {
        k.fill(dx, 0);
        chunks((i) => {
          const gv = view(gy, i * o * hw, CHUNK * o, hw);
          k.gemm(w, gv, cols, { batch: CHUNK, m: kk, n: hw, k: o, transA: true, transB: false, aStride: 0, bStride: o * hw, accumulate: false });
          k.col2im(cols, dx, g, i, 0, c, CHUNK);
          gv.dispose();
        });
      },
    );
    wt.dispose();
  }
  for (const t of [x, w, gy, out, dw, dx, cols, products, sum]) t.dispose();
  return { forward, weight, input };
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } }); // bench/main.ts reports a bad option
  useFastestBackend();
  setThreads(1);
  const k = kernels('float32');
  const rows = [];
  for (const s of SHAPES) {
    const g = convGeometry('conv2d', s.x, s.w[2], s.w[3], s.o);
    const t = layer(k, s, g);
    for (const d of ['forward', 'weight', 'input'] as const) {
      const r = t[d];
      if (!r) continue;
      const uses = d === 'input' ? inputGradAlgorithm(g, s.x[1]) : 'implicit';
      rows.push({ shape: s.label, direction: d, implicitCpuMs: r[0], materializedCpuMs: r[1], ratio: r[1] / r[0], uses });
    }
  }
  printTable(rows.map((r) => ({ ...r, implicitCpuMs: Number(r.implicitCpuMs.toFixed(2)), materializedCpuMs: Number(r.materializedCpuMs.toFixed(2)), ratio: Number(r.ratio.toFixed(2)) })));
  if (values.json) printJson({ suite: 'conv', threads: 1, rows });
  return 0;
}
