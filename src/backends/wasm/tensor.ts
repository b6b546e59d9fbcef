/**
 * The generic tensor kernels of the contract (unary maps, reductions, softmax, cross-entropy, row
 * gathers, strided copies, average pooling, channel bias) on kernels/tensor.ts: argument checks,
 * op codes, thread splits. Float32 only (copy: any 4-byte dtype); anything else runs the
 * reference, like the positional convention.
 */
import type { DType } from '../../core/dtype.js';
import { fmt } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import type { ChannelLayout, Conv2dGeometry, Kernels, ReduceLayout, UnaryOp } from '../kernels.js';
import { referenceKernels } from '../reference/index.js';
import type { WasmKernels } from './kernels.js';

/** The exports of kernels/tensor.ts (pointers are byte offsets into the arena; f32 arguments as bits where the pool may run them). */
export interface TensorKernelExports {
  unary(op: number, x: number, out: number, n: number, sBits: number): void;
  reduce(op: number, x: number, y: number, mask: number, o0: number, o1: number, reduced: number, inner: number, hasMask: number): void;
  softmax(x: number, y: number, r0: number, r1: number, n: number, log: number): void;
  crossEntropy(logits: number, labels: number, probs: number, rows: number, n: number): number;
  crossEntropyGrad(probs: number, labels: number, out: number, rows: number, n: number, scale: number): void;
  gatherRows(table: number, ids: number, out: number, count: number, D: number, rows: number): number;
  scatterAddRows(g: number, ids: number, out: number, count: number, D: number, rows: number): number;
  copy(src: number, dst: number, ...shapeAndStrides: number[]): void;
  channelAdd(x: number, bias: number, out: number, outer: number, C: number, inner: number, c0: number, c1: number): void;
  hardtanhMask(x: number, y: number, mask: number, n: number, loBits: number, hiBits: number, hasMask: number): void;
  dropout(x: number, out: number, lo: number, hi: number, pLow: number, pHigh: number, seed: number): void;
  avgPool2d(
    x: number, out: number, p0: number, p1: number, h: number, w: number, kh: number, kw: number,
    sh: number, sw: number, ph: number, pw: number, outH: number, outW: number, grad: number,
  ): void;
}

/** Op codes of kernels/tensor.ts `unary`, in its order. */
const UNARY_CODES: readonly UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'tanh', 'sigmoid', 'softplus', 'gelu', 'gelu_grad', 'mul_scalar', 'add_scalar', 'pow_scalar'];
/** Maps kernels/tensor.ts leaves to the reference (they would need table-driven math in wasm). */
const TABLE_MATH = new Set<UnaryOp>(['log', 'softplus', 'pow_scalar']);
/** Maps costing about as much as a copy (the rest are transcendental: UNIT_NS.unary). */
const CHEAP_UNARY = new Set<UnaryOp>(['neg', 'mul_scalar', 'add_scalar']);
/** Axes the wasm copy kernel iterates (after merging); the wrapper loops over any more. */
const COPY_AXES = 4;

const f32Bits = (() => {
  const f = new Float32Array(1), i = new Int32Array(f.buffer);
  return (v: number): number => {
    f[0] = v;
    return i[0]!;
  };
})();

/** Whether every tensor is a live contiguous float32 tensor (else the caller runs the reference). */
function allFloat32(...ts: (Tensor | null)[]): boolean {
  for (const t of ts) {
    if (!t) continue;
    if (t.dtype !== 'float32' || !t.isContiguous()) return false;
  }
  for (const t of ts) t?.assertAlive('wasm kernel');
  return true;
}

function need(op: string, role: string, t: Tensor, n: number, dtype: DType = 'float32'): void {
  if (t.dtype !== dtype || !t.isContiguous() || t.size < n) {
    throw new RangeError(`${op}: ${role} must be a contiguous ${dtype} tensor of at least ${n} elements, got ${t.dtype} ${fmt(t.shape)}`);
  }
  t.assertAlive(op);
}

/** Labels/ids must lie in [0, n): checked before a kernel indexes memory with them. */
function checkIndices(op: string, role: string, ids: Tensor, n: number): void {
  const v = ids.data();
  for (let i = 0; i < v.length; i++) {
    const id = v[i]!;
    if (!(id >= 0 && id < n)) throw new RangeError(`${op}: ${role}[${i}] = ${id} outside [0, ${n})`);
  }
}

/** The tensor kernels of the engine module, bound by name next to WasmKernels (bindKernels). */
export class TensorWasmKernels implements Partial<Kernels> {
  private readonly x: TensorKernelExports;
  constructor(private readonly engine: WasmKernels) {
    this.x = engine.module.exports as unknown as TensorKernelExports;
  }

  /** The reference, for a call this module hands over: it runs now, so not while parallelFor records. */
  private reference(op: string): typeof referenceKernels {
    this.engine.assertNotRecording(op);
    return referenceKernels;
  }

  unary(op: UnaryOp, x: Tensor, out: Tensor, s: number): void {
    const code = UNARY_CODES.indexOf(op);
    if (code < 0) throw new RangeError(`unary: unknown op '${op}'`);
    if (TABLE_MATH.has(op) || !allFloat32(x, out)) return this.reference('unary').unary(op, x, out, s);
    const n = out.size;
    need('unary', 'x', x, n);
    const bits = f32Bits(s);
    this.engine.split('unary', n, this.engine.splitAt(CHEAP_UNARY.has(op) ? 'elementwise' : 'unary'), 4, (lo, hi) => [code, x.ptr + lo * 4, out.ptr + lo * 4, hi - lo, bits]);
  }

  reduce(op: 'sum' | 'max', x: Tensor, y: Tensor, l: ReduceLayout, mask: Tensor | null): void {
    if (op !== 'sum' && op !== 'max') throw new RangeError(`reduce: unknown op '${op}'`);
    if (!allFloat32(x, y)) return this.reference('reduce').reduce(op, x, y, l, mask);
    const total = l.outer * l.reduced * l.inner;
    need('reduce', 'x', x, total);
    need('reduce', 'y', y, l.outer * l.inner);
    if (mask) need('reduce', 'mask', mask, total, 'uint8');
    const m = op === 'max' && mask ? mask : null;
    if (mask && !m) mask.data().fill(0);
    this.engine.split('reduce', l.outer, this.engine.splitAt('reduce') / Math.max(1, l.reduced * l.inner), 1, (o0, o1) => [
      op === 'sum' ? 0 : 1, x.ptr, y.ptr, m ? m.ptr : 0, o0, o1, l.reduced, l.inner, m ? 1 : 0,
    ]);
  }

  softmax(x: Tensor, y: Tensor, rows: number, n: number, log: boolean): void {
    if (!allFloat32(x, y)) return this.reference('softmax').softmax(x, y, rows, n, log);
    need('softmax', 'x', x, rows * n);
    need('softmax', 'y', y, rows * n);
    this.engine.split('softmax', rows, this.engine.splitAt('softmax') / Math.max(1, n), 1, (r0, r1) => [x.ptr, y.ptr, r0, r1, n, log ? 1 : 0]);
  }

  crossEntropy(logits: Tensor, labels: Tensor, probs: Tensor): number {
    if (!allFloat32(logits, probs) || labels.dtype !== 'int32') return this.reference('crossEntropy').crossEntropy(logits, labels, probs);
    const rows = labels.size, n = rows === 0 ? 0 : logits.size / rows;
    need('crossEntropy', 'probs', probs, logits.size);
    need('crossEntropy', 'labels', labels, rows, 'int32');
    checkIndices('crossEntropy', 'labels', labels, n);
    this.engine.assertNotRecording('crossEntropy');
    return this.x.crossEntropy(logits.ptr, labels.ptr, probs.ptr, rows, n) / rows;
  }

  crossEntropyGrad(probs: Tensor, labels: Tensor, out: Tensor, scale: number): void {
    if (!allFloat32(probs, out) || labels.dtype !== 'int32') return this.reference('crossEntropyGrad').crossEntropyGrad(probs, labels, out, scale);
    const rows = labels.size, n = rows === 0 ? 0 : probs.size / rows;
    need('crossEntropyGrad', 'out', out, probs.size);
    need('crossEntropyGrad', 'labels', labels, rows, 'int32');
    checkIndices('crossEntropyGrad', 'labels', labels, n);
    this.engine.assertNotRecording('crossEntropyGrad');
    this.x.crossEntropyGrad(probs.ptr, labels.ptr, out.ptr, rows, n, scale);
  }

  gatherRows(table: Tensor, ids: Tensor, out: Tensor): void {
    this.rows('gatherRows', table, ids, out, table);
  }

  scatterAddRows(g: Tensor, ids: Tensor, out: Tensor): void {
    this.rows('scatterAddRows', g, ids, out, out);
  }

  /** gatherRows/scatterAddRows: the table is [V, D]; the kernel refuses ids outside [0, V) before writing. */
  private rows(op: 'gatherRows' | 'scatterAddRows', src: Tensor, ids: Tensor, out: Tensor, table: Tensor): void {
    if (!allFloat32(src, out) || ids.dtype !== 'int32' || !ids.isContiguous()) return this.reference(op)[op](src, ids, out);
    const V = table.shape[0]!, D = table.shape[1]!, count = ids.size;
    need(op, 'table', table, V * D);
    need(op, op === 'gatherRows' ? 'out' : 'g', op === 'gatherRows' ? out : src, count * D);
    ids.assertAlive(op);
    this.engine.assertNotRecording(op);
    const bad = this.x[op](src.ptr, ids.ptr, out.ptr, count, D, V);
    if (bad >= 0) throw new RangeError(`${op}: ids[${bad}] = ${ids.data()[bad]} outside [0, ${V})`);
  }

  copy(src: Tensor, dst: Tensor): void {
    const axes = src.dtype === dst.dtype && (src.dtype === 'float32' || src.dtype === 'int32') ? copyAxes(src, dst) : null;
    if (!axes) return this.reference('copy').copy(src, dst);
    this.engine.assertNotRecording('copy');
    src.assertAlive('copy');
    dst.assertAlive('copy');
    if (dst.size === 0) return;
    // The kernel iterates the last COPY_AXES axes; any leading ones are iterated here.
    const lead = axes.slice(0, -COPY_AXES), tail = axes.slice(-COPY_AXES);
    const shape = tail.map((a) => a[0]), strides = [...tail.map((a) => a[1]), ...tail.map((a) => a[2])];
    const index = lead.map(() => 0);
    let so = src.ptr, d = dst.ptr;
    for (;;) {
      this.x.copy(so, d, ...shape, ...strides);
      let i = lead.length - 1;
      for (; i >= 0; i--) {
        const [n, si, di] = lead[i]!;
        so += si * 4;
        d += di * 4;
        if (++index[i]! < n) break;
        so -= n * si * 4;
        d -= n * di * 4;
        index[i] = 0;
      }
      if (i < 0) return;
    }
  }

  dropout(x: Tensor, out: Tensor, p: number, seed: number): void {
    if (!allFloat32(x, out)) return this.reference('dropout').dropout(x, out, p, seed);
    const n = out.size;
    need('dropout', 'x', x, n);
    // p travels as its f64 bits (two i32 words): the keep test compares the uniform with p exactly.
    const words = new Int32Array(new Float64Array([p]).buffer);
    this.engine.split('dropout', n, this.engine.splitAt('dropout'), 4, (lo, hi) => [x.ptr, out.ptr, lo, hi, words[0]!, words[1]!, seed >>> 0 | 0]);
  }

  hardtanhMask(x: Tensor, y: Tensor, mask: Tensor | null, min: number, max: number): void {
    if (!allFloat32(x, y)) return this.reference('hardtanhMask').hardtanhMask(x, y, mask, min, max);
    const n = x.size;
    need('hardtanhMask', 'y', y, n);
    if (mask) need('hardtanhMask', 'mask', mask, n, 'uint8');
    const lo = f32Bits(min), hi = f32Bits(max);
    this.engine.split('hardtanhMask', n, this.engine.splitAt('hardtanh'), 16, (a, b) => [x.ptr + a * 4, y.ptr + a * 4, mask ? mask.ptr + a : 0, b - a, lo, hi, mask ? 1 : 0]);
  }

  channelAdd(x: Tensor, bias: Tensor, out: Tensor, l: ChannelLayout): void {
    if (!allFloat32(x, bias, out)) return this.reference('channelAdd').channelAdd(x, bias, out, l);
    const total = l.outer * l.channels * l.inner;
    need('channelAdd', 'x', x, total);
    need('channelAdd', 'out', out, total);
    need('channelAdd', 'bias', bias, l.channels);
    this.engine.split('channelAdd', l.channels, this.engine.splitAt('elementwise') / Math.max(1, l.outer * l.inner), 1, (c0, c1) => [x.ptr, bias.ptr, out.ptr, l.outer, l.channels, l.inner, c0, c1]);
  }

  avgPool2d(x: Tensor, out: Tensor, g: Conv2dGeometry): void {
    if (!allFloat32(x, out)) return this.reference('avgPool2d').avgPool2d(x, out, g);
    this.pool(x, out, g, 0);
  }

  avgPool2dGrad(gy: Tensor, dx: Tensor, g: Conv2dGeometry): void {
    if (!allFloat32(gy, dx)) return this.reference('avgPool2dGrad').avgPool2dGrad(gy, dx, g);
    this.pool(dx, gy, g, 1);
  }

  private pool(image: Tensor, pooled: Tensor, g: Conv2dGeometry, grad: number): void {
    const op = grad ? 'avgPool2dGrad' : 'avgPool2d';
    if (g.strideH < 1 || g.strideW < 1) throw new RangeError(`${op}: strides must be >= 1, got ${g.strideH}x${g.strideW}`);
    const planes = g.n * g.c, outPlane = g.outH * g.outW;
    need(op, grad ? 'dx' : 'x', image, planes * g.h * g.w);
    need(op, grad ? 'gy' : 'out', pooled, planes * outPlane);
    const work = planes * outPlane * g.kh * g.kw;
    this.engine.split('avgPool2d', planes, this.engine.splitAt('avgPool') / Math.max(1, work / Math.max(1, planes)), 1, (p0, p1) => [
      image.ptr, pooled.ptr, p0, p1, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW, grad,
    ]);
  }
}

/**
 * The axes of copy as [size, source stride, destination stride] (size-1 axes dropped, axes
 * contiguous in both merged, leading [1, 0, 0] axes padded up to COPY_AXES), or null when a
 * stride is negative. Source strides are 0 along broadcast axes.
 */
export function copyAxes(src: Tensor, dst: Tensor): [number, number, number][] | null {
  const shape = dst.shape, off = shape.length - src.rank;
  const axes: [number, number, number][] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 1) continue;
    const si = d < off || src.shape[d - off] === 1 ? 0 : src.strides[d - off]!, di = dst.strides[d]!;
    if (si < 0 || di < 0) return null;
    const last = axes[axes.length - 1];
    if (last && last[1] === si * n && last[2] === di * n) {
      last[0] *= n;
      last[1] = si;
      last[2] = di;
    } else axes.push([n, si, di]);
  }
  while (axes.length < COPY_AXES) axes.unshift([1, 0, 0]);
  return axes;
}
