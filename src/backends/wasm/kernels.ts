/**
 * The `Kernels` contract on top of the compiled AssemblyScript module: argument checks (a wasm
 * kernel writing past a tensor would silently corrupt other tensors in the arena), splitting work
 * into per-thread parts, and the per-thread GEMM packing scratch.
 */
import { arena } from '../../core/arena.js';
import { fmt } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import type { Conv2dGeometry, GemmArgs, Kernels } from '../kernels.js';
import type { KernelModule } from './loader.js';
import { ThreadPool, type PoolOp } from './pool.js';

/** GEMM tile sizes of kernels/gemm.ts: parts split rows at MR and columns at NR boundaries. */
const MR = 4;
const NR = 8;
/** Multiply-adds below which a GEMM stays on one thread (a dispatch costs ~10-20 us). */
const GEMM_PARALLEL_MACS = 1 << 20;
/** Elements of cols below which im2col/col2im stay on one thread. */
const IM2COL_PARALLEL_ELEMENTS = 1 << 18;

function checkTensor(op: string, role: string, t: Tensor, minSize: number): void {
  if (t.dtype !== 'float32') throw new TypeError(`${op}: ${role} must be float32, got ${t.dtype}`);
  if (!t.isContiguous()) throw new Error(`${op}: ${role} ${fmt(t.shape)} must be contiguous`);
  t.assertAlive(op);
  if (t.size < minSize) throw new RangeError(`${op}: ${role} ${fmt(t.shape)} has ${t.size} elements, needs at least ${minSize}`);
}

function checkCounts(op: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new RangeError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
}

/** Splits [0, total) into at most `parts` ranges whose inner boundaries are multiples of `align`. */
export function splitRange(total: number, parts: number, align: number): [number, number][] {
  const units = Math.ceil(total / align);
  const count = Math.max(1, Math.min(parts, units));
  const ranges: [number, number][] = [];
  for (let p = 0; p < count; p++) {
    const lo = Math.min(total, Math.floor((units * p) / count) * align);
    const hi = Math.min(total, Math.floor((units * (p + 1)) / count) * align);
    if (hi > lo) ranges.push([lo, hi]);
  }
  return ranges;
}

export class WasmKernels implements Kernels {
  private threadCount = 1;
  private pool: ThreadPool | undefined;
  /** Set when the pool could not start: stay single-threaded rather than retry on every call. */
  private poolFailed = false;
  /** One GEMM packing scratch block per thread, allocated on first use. */
  private scratch: number[] = [];
  private readonly scratchBytes: number;

  constructor(readonly module: KernelModule) {
    this.scratchBytes = module.exports.gemmScratchBytes();
  }

  get threads(): number {
    return this.threadCount;
  }

  /** Threads kernels may use (1 = this thread only). The pool starts on the first job that needs it. */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: expected a positive integer, got ${n}`);
    if (n === this.threadCount) return;
    this.shutdown();
    this.threadCount = n;
    this.poolFailed = false;
  }

  /** Terminates the worker threads (they restart on the next job that needs them). */
  shutdown(): void {
    this.pool?.close();
    this.pool = undefined;
  }

  /** Bytes of arena memory held for GEMM packing (one block per thread that has run a GEMM). */
  get workspaceBytes(): number {
    return this.scratch.length * this.scratchBytes;
  }

  /** Whether a worker pool is running now. */
  get poolRunning(): boolean {
    return this.pool !== undefined;
  }

  private scratchFor(part: number): number {
    while (this.scratch.length <= part) this.scratch.push(arena().alloc(this.scratchBytes));
    return this.scratch[part]!;
  }

  /** Runs the parts on the pool when there is more than one, else inline. */
  private run(op: PoolOp, parts: number[][]): void {
    if (parts.length > 1 && !this.pool && !this.poolFailed) {
      this.pool = ThreadPool.start(this.module, this.threadCount);
      this.poolFailed = !this.pool;
    }
    if (parts.length === 1 || !this.pool) {
      const fn = this.module.exports[op] as (...args: number[]) => void;
      for (const args of parts) fn(...args);
      return;
    }
    this.pool.run(op, parts);
  }

  /** How many parts a job of `work` units should use, given the parallel threshold. */
  private partsFor(work: number, threshold: number): number {
    return work >= threshold ? this.threadCount : 1;
  }

  gemm(a: Tensor, b: Tensor, c: Tensor, p: GemmArgs): void {
    const { batch, m, n, k } = p;
    checkCounts('gemm', { batch, m, n, k, aStride: p.aStride, bStride: p.bStride });
    if (batch === 0 || m === 0 || n === 0) return;
    checkTensor('gemm', 'A', a, (batch - 1) * p.aStride + m * k);
    checkTensor('gemm', 'B', b, (batch - 1) * p.bStride + k * n);
    checkTensor('gemm', 'C', c, batch * m * n);
    const flags = (p.transA ? 1 : 0) | (p.transB ? 2 : 0) | (p.accumulate ? 4 : 0);
    const want = this.partsFor(batch * m * n * k, GEMM_PARALLEL_MACS);
    // Split batches when there are enough of them, else the longer of rows and columns (each part
    // packs its own share of one operand and all of the other, so both choices duplicate a packing).
    let ranges: [number, number, number, number, number, number][];
    if (batch >= want) {
      ranges = splitRange(batch, want, 1).map(([b0, b1]) => [b0, b1, 0, m, 0, n]);
    } else if (m >= n) {
      ranges = splitRange(m, want, MR).map(([i0, i1]) => [0, batch, i0, i1, 0, n]);
    } else {
      ranges = splitRange(n, want, NR).map(([j0, j1]) => [0, batch, 0, m, j0, j1]);
    }
    const parts = ranges.map((r, part) => [a.ptr, b.ptr, c.ptr, m, n, k, p.aStride, p.bStride, flags, ...r, this.scratchFor(part)]);
    this.run('gemm', parts);
  }

  im2col(x: Tensor, cols: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number): void {
    this.unfold('im2col', x, cols, g, img, c0, cg);
  }

  col2im(cols: Tensor, dx: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number): void {
    this.unfold('col2im', dx, cols, g, img, c0, cg);
  }

  /** im2col and col2im: the same checks and the same split over channels (disjoint rows of cols and planes of the image). */
  private unfold(op: 'im2col' | 'col2im', image: Tensor, cols: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number): void {
    checkCounts(op, { ...g, img, c0, cg });
    if (g.strideH < 1 || g.strideW < 1 || g.dilationH < 1 || g.dilationW < 1) {
      throw new RangeError(`${op}: strides and dilations must be >= 1, got stride ${g.strideH}x${g.strideW}, dilation ${g.dilationH}x${g.dilationW}`);
    }
    if (img >= g.n || c0 + cg > g.c) throw new RangeError(`${op}: image ${img} channels [${c0}, ${c0 + cg}) outside n=${g.n}, c=${g.c}`);
    const rowsPerChannel = g.kh * g.kw * g.outH * g.outW;
    checkTensor(op, 'image', image, g.n * g.c * g.h * g.w);
    checkTensor(op, 'cols', cols, cg * rowsPerChannel);
    if (cg === 0 || rowsPerChannel === 0) return;
    const parts = splitRange(cg, this.partsFor(cg * rowsPerChannel, IM2COL_PARALLEL_ELEMENTS), 1).map(([lo, hi]) => {
      const colsPtr = cols.ptr + lo * rowsPerChannel * 4;
      const geometry = [g.c, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padH, g.padW, g.dilationH, g.dilationW, g.outH, g.outW];
      return op === 'im2col'
        ? [image.ptr, colsPtr, ...geometry, img, c0 + lo, hi - lo]
        : [colsPtr, image.ptr, ...geometry, img, c0 + lo, hi - lo];
    });
    this.run(op, parts);
  }
}
