/**
 * The `Kernels` contract on top of the compiled AssemblyScript module: argument checks (a wasm
 * kernel writing past a tensor would silently corrupt other tensors in the arena), splitting work
 * into per-thread parts, and the per-thread GEMM packing scratch.
 */
import { chunkCount, COMET_CHUNK, COMET_DECODE_SCRATCH, cometChunkOffsets, cometRegionBytes } from '../../compress/comet.js';
import { codeBytes, groupCount, type CodeBits, type GroupLayout, type MetaPrecision, type NoiseKey } from '../../compress/quantize.js';
import { arena } from '../../core/arena.js';
import type { DType } from '../../core/dtype.js';
import { ledger, type Category } from '../../core/ledger.js';
import { fmt } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { referenceKernels } from '../reference/index.js';
import { BINARY_OPS, type AdamStep, type ParallelWork, type WorkKind, type BinaryOp, type SgdStep, type ChannelAffineArgs, type ChannelLayout, type Conv2dGeometry, type ConvGemmArgs, type GemmArgs, type HalfFormat, type Kernels } from '../kernels.js';
import type { KernelModule } from './loader.js';
import { ThreadPool, type PoolCall, type PoolOp } from './pool.js';

/** GEMM tile sizes of kernels/gemm.ts: parts split rows at MR and columns at NR boundaries. */
const MR = 4;
const NR = 8;
/**
 * Single-thread cost of one unit of each kernel's work in ns (units: GEMM multiply-adds, im2col
 * columns elements, pooling window reads, elements otherwise; `unary` is a transcendental map,
 * `elementwise` a cheap one; `pool2x2` the 2x2 stride-2 max-pooling paths, forward and gradient,
 * per window element), measured on the 2-vCPU Zen 4 VM (1 thread, best of 30 calls; the codecs
 * estimated). With `minSplitNs` they set each kernel's split threshold.
 */
export const UNIT_NS: Readonly<Record<WorkKind, number>> = {
  gemm: 0.04, im2col: 0.5, pool: 3, pool2x2: 0.5, avgPool: 2.2, elementwise: 0.2, hardtanh: 1.4, unary: 4, reduce: 0.25,
  softmax: 8, dropout: 12, channel: 0.3, sgd: 1.5, adam: 6.5, codec: 1,
};
/**
 * Default single-thread work from which a kernel splits across threads (200 us): a pool job costs
 * ~50-100 us more than its work on the 2-vCPU VM (waking a parked worker and joining it; LeNet-5's
 * small kernels ran slower split), so half the work must be worth more than that. Whole layers
 * run as one job per thread through parallelFor instead (conv2d).
 */
export const MIN_SPLIT_NS = 200_000;

/** The bits of float32 `v` as an int32 (the pool passes i32 arguments only). */
const f32Bits = (() => {
  const f = new Float32Array(1), i = new Int32Array(f.buffer);
  return (v: number): number => {
    f[0] = v;
    return i[0]!;
  };
})();

function checkTensor(op: string, role: string, t: Tensor, minSize: number): void {
  if (t.dtype !== 'float32') throw new TypeError(`${op}: ${role} must be float32, got ${t.dtype}`);
  if (!t.isContiguous()) throw new Error(`${op}: ${role} ${fmt(t.shape)} must be contiguous`);
  t.assertAlive(op);
  if (t.size < minSize) throw new RangeError(`${op}: ${role} ${fmt(t.shape)} has ${t.size} elements, needs at least ${minSize}`);
}

/** Throws unless the window geometry's counts are int32-sized and its strides and dilations >= 1. */
function checkGeometry(op: string, g: Conv2dGeometry): void {
  checkCounts(op, g as unknown as Record<string, number>);
  if (g.strideH < 1 || g.strideW < 1 || g.dilationH < 1 || g.dilationW < 1) {
    throw new RangeError(`${op}: strides and dilations must be >= 1, got stride ${g.strideH}x${g.strideW}, dilation ${g.dilationH}x${g.dilationW}`);
  }
}

/** Throws unless every value is an int32-sized non-negative integer (they become wasm i32 arguments). */
function checkCounts(op: string, values: Record<string, number>): void {
  for (const name in values) {
    const v = values[name]!;
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

/** The engine kernels of kernels/ (the contract's subset they implement; the rest runs on the reference). */
export class WasmKernels implements Partial<Kernels> {
  private threadCount = 1;
  private pool: ThreadPool | undefined;
  /** Set when the pool could not start: stay single-threaded rather than retry on every call. */
  private poolFailed = false;
  /**
   * One GEMM packing scratch block per thread, allocated when the thread count is set (so it sits
   * at the bottom of the arena, not in a hole a step left) and booked in the ledger as workspace.
   */
  private scratch: number[] = [];
  private readonly scratchBytes: number;
  /**
   * Inside a parallelFor block: the part (thread) it runs on, and its call list while the block is
   * recorded for a worker (null while the calling thread runs its own block directly). Kernels
   * called in a block never split further, and GEMMs pack into the part's scratch.
   */
  private block: { part: number; calls: PoolCall[] | null } | null = null;

  constructor(readonly module: KernelModule) {
    // The per-thread scratch also holds the COMET decoder's table and block.
    this.scratchBytes = Math.max(module.exports.gemmScratchBytes(), COMET_DECODE_SCRATCH);
    this.sizeScratch();
  }

  /**
   * Single-thread work (ns) from which a kernel splits across threads (MIN_SPLIT_NS). Lower it
   * where waking a thread is cheap (bare-metal cores); 0 splits every kernel (the tests do, to run
   * the split paths on small inputs). Results do not depend on it.
   */
  minSplitNs = MIN_SPLIT_NS;

  /** Units of work of `kind` (UNIT_NS) from which a kernel splits across threads. */
  splitAt(kind: WorkKind): number {
    return Math.ceil(this.minSplitNs / UNIT_NS[kind]);
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
    this.sizeScratch();
  }

  /**
   * Starts the worker threads now rather than on the first job that needs them (no-op with one
   * thread, or when they are running or could not start). `useFastestBackend` calls it, so that
   * the workers' fixed memory (a V8 isolate each) is part of the process before training starts.
   */
  startPool(): void {
    if (this.pool || this.poolFailed || this.threadCount < 2) return;
    this.pool = ThreadPool.start(this.module, this.threadCount);
    this.poolFailed = !this.pool;
  }

  /**
   * Starts the worker threads where they can only start asynchronously (Web Workers: a page's
   * threads begin once the creating thread yields); `startPool` elsewhere. Resolves to the
   * threads running (1 when no pool could start).
   */
  async startPoolAsync(): Promise<number> {
    if (!this.pool && this.threadCount > 1) {
      this.pool = (await ThreadPool.startAsync(this.module, this.threadCount)) ?? ThreadPool.start(this.module, this.threadCount);
      this.poolFailed = !this.pool;
    }
    return this.pool ? this.threadCount : 1;
  }

  /** Terminates the worker threads (they restart on the next job that needs them). */
  shutdown(): void {
    this.pool?.close();
    this.pool = undefined;
  }

  /** Bytes of arena memory held for GEMM packing (one block per thread, booked as workspace). */
  get workspaceBytes(): number {
    return this.scratch.length * this.scratchBytes;
  }

  /** Whether a worker pool is running now. */
  get poolRunning(): boolean {
    return this.pool !== undefined;
  }

  /** One scratch block per thread: allocates the missing ones, frees the extra ones. */
  private sizeScratch(): void {
    while (this.scratch.length < this.threadCount) {
      this.scratch.push(arena().alloc(this.scratchBytes));
      ledger.add('workspace', this.scratchBytes);
    }
    while (this.scratch.length > this.threadCount) {
      arena().free(this.scratch.pop()!, this.scratchBytes);
      ledger.remove('workspace', this.scratchBytes);
    }
  }

  /** Runs the parts on the pool when there is more than one, else inline; while a block is recorded, appends them to its calls. */
  private run(op: PoolOp, parts: number[][]): void {
    if (this.block?.calls) {
      for (const args of parts) this.block.calls.push({ op, args });
      return;
    }
    if (parts.length > 1) this.startPool();
    if (parts.length === 1 || !this.pool) {
      const fn = this.module.exports[op] as (...args: number[]) => void;
      for (const args of parts) fn(...args);
      return;
    }
    this.pool.run(op, parts);
  }

  /** How many parts a job of `work` units should use, given the parallel threshold (1 inside a parallelFor block: the block is the thread's share). */
  private partsFor(work: number, threshold: number): number {
    return work >= threshold && !this.block ? this.threadCount : 1;
  }

  /** The scratch (GEMM packing, the COMET decoder's table) of part `part` of a split call (inside a block: the block's thread's). */
  private scratchOf(part: number): number {
    return this.scratch[this.block ? this.block.part : part]!;
  }

  parallelSlots(count: number, work?: ParallelWork): number {
    checkCounts('parallelFor', { count });
    if (this.block || (work && work.units < this.splitAt(work.kind))) return 1;
    return Math.max(1, Math.min(this.threadCount, count));
  }

  /**
   * Splits [0, count) into one contiguous block per slot (`splitRange`): the workers' blocks are
   * recorded (each body's kernel calls, in order) and started as one pool job, then this thread
   * runs block 0 directly while they work, and joins them. With one slot (one thread, or inside
   * another parallelFor) the bodies run directly.
   */
  parallelFor(count: number, body: (i: number, slot: number) => void, work?: ParallelWork): void {
    const slots = this.parallelSlots(count, work);
    if (slots === 1) {
      for (let i = 0; i < count; i++) body(i, 0);
      return;
    }
    const ranges = splitRange(count, slots, 1);
    const runBlock = (part: number, calls: PoolCall[] | null): void => {
      this.block = { part, calls };
      try {
        for (let i = ranges[part]![0]; i < ranges[part]![1]; i++) body(i, part);
      } finally {
        this.block = null;
      }
    };
    this.startPool();
    this.pool?.prepare();
    const programs: PoolCall[][] = [[]];
    for (let part = 1; part < ranges.length; part++) runBlock(part, programs[part] = []);
    if (this.pool && programs.every((calls) => this.pool!.fits(calls))) {
      this.pool.runJob(programs, () => runBlock(0, null));
      return;
    }
    // No pool, or blocks longer than one job carries: record block 0 too and run the calls in rounds.
    runBlock(0, programs[0]!);
    if (this.pool) this.pool.runPrograms(programs);
    else for (const calls of programs) for (const { op, args } of calls) (this.module.exports[op] as (...a: number[]) => void)(...args);
  }

  /** Throws while parallelFor records: kernel `op` would run now or return a value, so it cannot be deferred to a thread. */
  assertNotRecording(op: string): void {
    if (this.block?.calls) throw new Error(`parallelFor: kernel ${op} cannot run inside a parallel body here (it runs in JavaScript or returns a value)`);
  }

  /**
   * Runs a group-quantization kernel (kernels/quantize.ts) over `rows` rows, split across threads
   * by rows; `args(rowFrom, rowTo)` gives one part's arguments. With `bitsPerElement` < 8 the
   * split happens only when every row ends on a byte boundary (parts must not share a code byte).
   */
  private quantRows(op: 'groupRanges' | 'quantizeGroups' | 'groupQuantize' | 'dequantizeGroups', rows: number, rowLength: number, bitsPerElement: number, args: (rowFrom: number, rowTo: number) => number[]): void {
    const want = (rowLength * bitsPerElement) % 8 === 0 ? this.partsFor(rows * rowLength, this.splitAt('codec')) : 1;
    this.run(op, splitRange(rows, want, 1).map(([lo, hi]) => args(lo, hi)));
  }

  groupRanges(x: Tensor, ranges: Tensor, l: GroupLayout): void {
    checkGroups('groupRanges', l);
    checkTensor('groupRanges', 'x', x, l.rows * l.rowLength);
    checkTyped('groupRanges', 'ranges', ranges, 'float64', 2 * groupCount(l));
    this.quantRows('groupRanges', l.rows, l.rowLength, 8, (r0, r1) => [x.ptr, r0, r1, l.rowLength, l.groupSize, ranges.ptr]);
  }

  quantizeGroups(x: Tensor, meta: Tensor, codes: Tensor, l: GroupLayout, bits: CodeBits, key: NoiseKey | null): void {
    checkGroups('quantizeGroups', l);
    checkTensor('quantizeGroups', 'x', x, l.rows * l.rowLength);
    checkTyped('quantizeGroups', 'meta', meta, 'float64', 2 * groupCount(l));
    checkTyped('quantizeGroups', 'codes', codes, 'uint8', codeBytes(l.rows * l.rowLength, bits));
    const noise = noiseArgs(key);
    this.quantRows('quantizeGroups', l.rows, l.rowLength, bits, (r0, r1) => [x.ptr, r0, r1, l.rowLength, l.groupSize, bits, ...noise, meta.ptr, codes.ptr]);
  }

  groupQuantize(x: Tensor, meta: Tensor, codes: Tensor, l: GroupLayout, bits: CodeBits, key: NoiseKey | null, precision: MetaPrecision): boolean {
    this.assertNotRecording('groupQuantize');
    checkGroups('groupQuantize', l);
    checkTensor('groupQuantize', 'x', x, l.rows * l.rowLength);
    checkTyped('groupQuantize', 'meta', meta, 'float64', 2 * groupCount(l));
    checkTyped('groupQuantize', 'codes', codes, 'uint8', codeBytes(l.rows * l.rowLength, bits));
    const noise = noiseArgs(key), half = precision === 'fp16' ? 1 : 0;
    const status = Tensor.empty([1], 'int32', 'workspace'); // a part that meets a group fp16 cannot hold stores 1
    this.quantRows('groupQuantize', l.rows, l.rowLength, bits, (r0, r1) => [x.ptr, r0, r1, l.rowLength, l.groupSize, bits, ...noise, half, meta.ptr, codes.ptr, status.ptr]);
    const ok = status.data()[0] === 0;
    status.dispose();
    return ok;
  }

  dequantizeGroups(codes: Tensor, meta: Tensor, out: Tensor, l: GroupLayout, bits: CodeBits): void {
    checkGroups('dequantizeGroups', l);
    checkTyped('dequantizeGroups', 'codes', codes, 'uint8', codeBytes(l.rows * l.rowLength, bits));
    checkTyped('dequantizeGroups', 'meta', meta, 'float32', 2 * groupCount(l));
    checkTensor('dequantizeGroups', 'out', out, l.rows * l.rowLength);
    this.quantRows('dequantizeGroups', l.rows, l.rowLength, 8, (r0, r1) => [codes.ptr, meta.ptr, r0, r1, l.rowLength, l.groupSize, bits, out.ptr]);
  }

  packMask(mask: Tensor, bits: Tensor): number {
    this.assertNotRecording('packMask');
    checkTyped('packMask', 'mask', mask, 'uint8', mask.size);
    checkTyped('packMask', 'bits', bits, 'uint8', codeBytes(mask.size, 1));
    return this.module.exports.packMask(mask.ptr, mask.size, bits.ptr);
  }

  unpackMask(bits: Tensor, mask: Tensor): void {
    this.assertNotRecording('unpackMask');
    checkTyped('unpackMask', 'mask', mask, 'uint8', mask.size);
    checkTyped('unpackMask', 'bits', bits, 'uint8', codeBytes(mask.size, 1));
    this.module.exports.unpackMask(bits.ptr, mask.size, mask.ptr);
  }

  halfEncode(x: Tensor, bytes: Tensor, format: HalfFormat): void {
    checkTensor('halfEncode', 'x', x, x.size);
    checkTyped('halfEncode', 'bytes', bytes, 'uint8', 2 * x.size);
    const parts = splitRange(x.size, this.partsFor(x.size, this.splitAt('codec')), 1);
    this.run('halfEncode', parts.map(([lo, hi]) => [x.ptr, x.size, bytes.ptr, format === 'fp16' ? 0 : 1, lo, hi]));
  }

  halfDecode(bytes: Tensor, out: Tensor, format: HalfFormat): void {
    checkTensor('halfDecode', 'out', out, out.size);
    checkTyped('halfDecode', 'bytes', bytes, 'uint8', 2 * out.size);
    const parts = splitRange(out.size, this.partsFor(out.size, this.splitAt('codec')), 1);
    this.run('halfDecode', parts.map(([lo, hi]) => [bytes.ptr, out.size, out.ptr, format === 'fp16' ? 0 : 1, lo, hi]));
  }

  cometEncode(x: Tensor, bound: number, category: Category): Tensor {
    this.assertNotRecording('cometEncode');
    checkTensor('cometEncode', 'x', x, x.size);
    if (!(bound >= 0) || !Number.isFinite(bound)) throw new RangeError(`comet: error bound must be a finite number >= 0, got ${bound}`);
    const chunks = chunkCount(x.size), region = cometRegionBytes(x.size), head = 4 + 4 * chunks;
    // Rounds of up to 4 chunks per thread: the worst-case regions (7 bytes per value) stay a few
    // MiB of workspace instead of 7x the tensor. A single round's chunks are moved straight behind
    // the stream's header; with several, each round's to a staging tensor (grown as needed), copied
    // behind the header at the end. Every copy stays in wasm memory (no JS arrays).
    const round = Math.max(1, Math.min(chunks, 4 * this.threadCount)), single = chunks <= round;
    const scratch = Tensor.uninitialized([round * region + 4 * round], 'uint8', 'workspace');
    const regions = scratch.ptr, lens = scratch.ptr + round * region;
    const lengths: number[] = [];
    let dest: Tensor | null = null, at = single ? head : 0;
    for (let first = 0; first < chunks; first += round) {
      const count = Math.min(round, chunks - first);
      // About 2 ns per value on one thread (ResNet-20's saves): a chunk (65,536 values) is worth a pool job.
      const parts = splitRange(count, this.partsFor(2 * count * COMET_CHUNK, this.splitAt('codec')), 1);
      this.run('cometEncode', parts.map(([lo, hi]) => [x.ptr, x.size, f32Bits(bound), regions, region, lens, first, first + lo, first + hi]));
      const got = Array.from({ length: count }, (_, c) => new DataView(arena().buffer).getUint32(lens + 4 * c, true));
      const need = at + got.reduce((a, b) => a + b, 0);
      if (single) dest = Tensor.uninitialized([need], 'uint8', category); // the header is written below
      else if (!dest || dest.size < need) {
        const grown = Tensor.uninitialized([Math.max(need, 2 * (dest?.size ?? 0), x.size >> 1)], 'uint8', 'workspace');
        if (dest) new Uint8Array(arena().buffer).copyWithin(grown.ptr, dest.ptr, dest.ptr + at);
        dest?.dispose();
        dest = grown;
      }
      const u8 = new Uint8Array(arena().buffer);
      got.forEach((length, c) => {
        u8.copyWithin(dest!.ptr + at, regions + c * region, regions + c * region + length);
        at += length;
      });
      lengths.push(...got);
    }
    scratch.dispose();
    let out = dest ?? Tensor.uninitialized([head], 'uint8', category);
    if (!single) {
      out = Tensor.uninitialized([head + at], 'uint8', category);
      new Uint8Array(arena().buffer).copyWithin(out.ptr + head, dest!.ptr, dest!.ptr + at);
      dest!.dispose();
    }
    const view = new DataView(arena().buffer);
    view.setFloat32(out.ptr, bound, true);
    lengths.forEach((length, c) => view.setUint32(out.ptr + 4 + 4 * c, length, true));
    return out;
  }

  cometDecode(bytes: Tensor, out: Tensor): void {
    this.assertNotRecording('cometDecode');
    checkTensor('cometDecode', 'out', out, out.size);
    checkTyped('cometDecode', 'bytes', bytes, 'uint8', bytes.size);
    cometChunkOffsets(bytes.data() as Uint8Array, out.size); // throws on a short stream or table
    const status = Tensor.empty([1], 'int32', 'workspace');
    const parts = splitRange(chunkCount(out.size), this.partsFor(2 * out.size, this.splitAt('codec')), 1); // about 2 ns per value
    // Each part's table and block: its thread's scratch.
    if (out.size > 0) this.run('cometDecode', parts.map(([lo, hi], part) => [bytes.ptr, bytes.size, out.size, out.ptr, status.ptr, this.scratchOf(part), lo, hi]));
    const bad = status.data()[0] !== 0;
    status.dispose();
    if (bad) throw new RangeError(`comet decode: a chunk of the ${bytes.size}-byte stream reads past its end or holds a bad Rice parameter`);
  }

  gemm(a: Tensor, b: Tensor, c: Tensor, p: GemmArgs): void {
    const { batch, m, n, k } = p;
    checkCounts('gemm', { batch, m, n, k, aStride: p.aStride, bStride: p.bStride });
    if (batch === 0 || m === 0 || n === 0) return;
    checkTensor('gemm', 'A', a, (batch - 1) * p.aStride + m * k);
    checkTensor('gemm', 'B', b, (batch - 1) * p.bStride + k * n);
    checkTensor('gemm', 'C', c, batch * m * n);
    const flags = (p.transA ? 1 : 0) | (p.transB ? 2 : 0) | (p.accumulate ? 4 : 0);
    const want = this.partsFor(batch * m * n * k, this.splitAt('gemm'));
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
    const parts = ranges.map((r, part) => [a.ptr, b.ptr, c.ptr, m, n, k, p.aStride, p.bStride, flags, ...r, this.scratchOf(part)]);
    this.run('gemm', parts);
  }

  convGemm(a: Tensor, x: Tensor, c: Tensor, g: Conv2dGeometry, p: ConvGemmArgs): void {
    const { img, images, c0, cg, m } = p;
    checkGeometry('convGemm', g);
    checkCounts('convGemm', { img, images, c0, cg, m, aStride: p.aStride, cStride: p.cStride });
    if (images < 1) throw new RangeError(`convGemm: images must be >= 1, got ${images}`);
    if (img + images > g.n || c0 + cg > g.c) throw new RangeError(`convGemm: images [${img}, ${img + images}) channels [${c0}, ${c0 + cg}) outside n=${g.n}, c=${g.c}`);
    const kk = cg * g.kh * g.kw, hw = g.outH * g.outW;
    if (m === 0) return;
    const [n, k] = p.weightGrad ? [kk, hw] : [hw, kk];
    checkTensor('convGemm', 'x', x, g.n * g.c * g.h * g.w);
    checkTensor('convGemm', 'A', a, (images - 1) * p.aStride + m * k);
    checkTensor('convGemm', 'C', c, p.weightGrad ? m * n : (images - 1) * p.cStride + m * n);
    const flags = (p.weightGrad ? 2 : 0) | (p.accumulate ? 4 : 0) | (p.flip ? 8 : 0);
    const want = this.partsFor(images * m * n * k, this.splitAt('gemm'));
    // Forward: split images when there are enough; the weight gradient sums over images, so it
    // (and a forward with few images) splits the longer of rows and columns of C (the same sums
    // in the same order, whatever the split).
    let ranges: [number, number, number, number, number, number][];
    if (!p.weightGrad && images >= want) ranges = splitRange(images, want, 1).map(([i0, i1]) => [img + i0, i1 - i0, 0, m, 0, n]);
    else if (m >= n) ranges = splitRange(m, want, MR).map(([i0, i1]) => [img, images, i0, i1, 0, n]);
    else ranges = splitRange(n, want, NR).map(([j0, j1]) => [img, images, 0, m, j0, j1]);
    const parts = ranges.map(([img0, count, i0, i1, j0, j1], part) => {
      const skip = img0 - img; // a forward part's first image: its A and C move with it
      return [
        a.ptr + 4 * skip * p.aStride, x.ptr, c.ptr + 4 * skip * p.cStride, m, flags, p.aStride, p.cStride, img0, count,
        i0, i1, j0, j1, this.scratchOf(part),
        g.c, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padH, g.padW, g.dilationH, g.dilationW, g.outH, g.outW, c0, cg,
      ];
    });
    this.run('convGemm', parts);
  }

  im2col(x: Tensor, cols: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images = 1): void {
    this.unfold('im2col', x, cols, g, img, c0, cg, images);
  }

  col2im(cols: Tensor, dx: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images = 1): void {
    this.unfold('col2im', dx, cols, g, img, c0, cg, images);
  }

  /**
   * im2col and col2im: the same checks and the same split over channels (each part takes its
   * channels of every image: disjoint rows of cols and planes of the images).
   */
  private unfold(op: 'im2col' | 'col2im', image: Tensor, cols: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images: number): void {
    checkGeometry(op, g);
    checkCounts(op, { img, c0, cg, images });
    if (img + images > g.n || c0 + cg > g.c) throw new RangeError(`${op}: images [${img}, ${img + images}) channels [${c0}, ${c0 + cg}) outside n=${g.n}, c=${g.c}`);
    const rowsPerChannel = g.kh * g.kw * g.outH * g.outW;
    checkTensor(op, 'image', image, g.n * g.c * g.h * g.w);
    checkTensor(op, 'cols', cols, images * cg * rowsPerChannel);
    if (cg === 0 || rowsPerChannel === 0 || images === 0) return;
    const imageStride = cg * rowsPerChannel * 4;
    const parts = splitRange(cg, this.partsFor(images * cg * rowsPerChannel, this.splitAt('im2col')), 1).map(([lo, hi]) => {
      const colsPtr = cols.ptr + lo * rowsPerChannel * 4;
      return [
        op === 'im2col' ? image.ptr : colsPtr, op === 'im2col' ? colsPtr : image.ptr,
        g.c, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padH, g.padW, g.dilationH, g.dilationW, g.outH, g.outW,
        img, c0 + lo, hi - lo, images, imageStride,
      ];
    });
    this.run(op, parts);
  }

  maxPool2d(x: Tensor, out: Tensor, index: Tensor, g: Conv2dGeometry): void {
    this.pool2d('maxPool2d', x, out, index, g);
  }

  maxPool2dGrad(gy: Tensor, index: Tensor, dx: Tensor, g: Conv2dGeometry): void {
    this.pool2d('maxPool2dGrad', dx, gy, index, g);
  }

  /** maxPool2d and its gradient: the same checks and the same split over planes. */
  private pool2d(op: 'maxPool2d' | 'maxPool2dGrad', image: Tensor, pooled: Tensor, index: Tensor, g: Conv2dGeometry): void {
    checkCounts(op, g as unknown as Record<string, number>);
    if (g.strideH < 1 || g.strideW < 1 || g.kh * g.kw > 256) {
      throw new RangeError(`${op}: needs strides >= 1 and a window of at most 256 elements, got stride ${g.strideH}x${g.strideW}, window ${g.kh}x${g.kw}`);
    }
    const planes = g.n * g.c, outPlane = g.outH * g.outW;
    checkTensor(op, op === 'maxPool2d' ? 'x' : 'dx', image, planes * g.h * g.w);
    checkTensor(op, op === 'maxPool2d' ? 'out' : 'gy', pooled, planes * outPlane);
    checkTyped(op, 'index', index, 'uint8', planes * outPlane);
    if (planes === 0 || outPlane === 0) return;
    const spatial = [g.h, g.w];
    const window = [g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW];
    const fast = g.kh === 2 && g.kw === 2 && g.strideH === 2 && g.strideW === 2 && g.padH === 0 && g.padW === 0; // the kernels' 2x2 paths
    const parts = splitRange(planes, this.partsFor(planes * outPlane * g.kh * g.kw, this.splitAt(fast ? 'pool2x2' : 'pool')), 1).map(([lo, hi]) => {
      const imagePtr = image.ptr + lo * g.h * g.w * 4, pooledPtr = pooled.ptr + lo * outPlane * 4, indexPtr = index.ptr + lo * outPlane;
      return op === 'maxPool2d'
        ? [imagePtr, pooledPtr, indexPtr, hi - lo, ...spatial, g.kh, g.kw, ...window]
        : [pooledPtr, indexPtr, imagePtr, hi - lo, ...spatial, g.kh, g.kw, ...window];
    });
    this.run(op, parts);
  }

  channelMoments(x: Tensor, mean: Tensor, variance: Tensor, layout: ChannelLayout): void {
    const C = this.checkLayout('channelMoments', layout, { x }, { mean, variance });
    this.runChannels('channelMoments', layout, (c0, c1) => [x.ptr, layout.outer, C, layout.inner, c0, c1, mean.ptr, variance.ptr]);
  }

  channelAffine(x: Tensor, out: Tensor, a: ChannelAffineArgs, layout: ChannelLayout): void {
    const u = a.u ?? null, uScale = a.uScale ?? null;
    if (!u !== !uScale) throw new Error('channelAffine: u and uScale must be given together');
    const C = this.checkLayout('channelAffine', layout, u ? { x, out, u } : { x, out }, uScale ? { mean: a.mean, scale: a.scale, shift: a.shift, uScale } : { mean: a.mean, scale: a.scale, shift: a.shift });
    this.runChannels('channelAffine', layout, (c0, c1) => [
      x.ptr, out.ptr, layout.outer, C, layout.inner, c0, c1, a.mean.ptr, a.scale.ptr, a.shift.ptr, u ? u.ptr : 0, uScale ? uScale.ptr : 0, u ? 1 : 0,
    ]);
  }

  channelGradSums(g: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, sumG: Tensor, sumGXhat: Tensor, layout: ChannelLayout): void {
    const C = this.checkLayout('channelGradSums', layout, { g, x }, { mean, invStd, sumG, sumGXhat });
    this.runChannels('channelGradSums', layout, (c0, c1) => [g.ptr, x.ptr, layout.outer, C, layout.inner, c0, c1, mean.ptr, invStd.ptr, sumG.ptr, sumGXhat.ptr]);
  }

  reluMask(x: Tensor, y: Tensor, mask: Tensor | null, slope: number): void {
    const n = x.size;
    checkTensor('reluMask', 'x', x, n);
    checkTensor('reluMask', 'y', y, n);
    if (mask) checkTyped('reluMask', 'mask', mask, 'uint8', n);
    const bits = f32Bits(slope);
    this.runElements('reluMask', 'elementwise', n, (lo, hi) => [x.ptr + lo * 4, y.ptr + lo * 4, mask ? mask.ptr + lo : 0, hi - lo, bits, mask ? 1 : 0]);
  }

  maskMul(g: Tensor, mask: Tensor, out: Tensor, scaleOff: number): void {
    const n = out.size;
    checkTensor('maskMul', 'g', g, n);
    checkTensor('maskMul', 'out', out, n);
    checkTyped('maskMul', 'mask', mask, 'uint8', n);
    const bits = f32Bits(scaleOff);
    this.runElements('maskMul', 'elementwise', n, (lo, hi) => [g.ptr + lo * 4, mask.ptr + lo, out.ptr + lo * 4, hi - lo, bits]);
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor, out: Tensor): void {
    const code = BINARY_OPS.indexOf(op);
    if (code < 0) throw new RangeError(`binary: unknown op '${op}'`);
    const n = out.size, m = b.size;
    checkTensor('binary', 'a', a, n);
    checkTensor('binary', 'b', b, m);
    checkTensor('binary', 'out', out, n);
    if (n === 0) return;
    if (m === 0 || n % m !== 0) throw new RangeError(`binary: out has ${n} elements, not a multiple of b's ${m}`);
    this.runElements('binary', 'elementwise', n, (lo, hi) => [code, a.ptr, b.ptr, out.ptr, lo, hi, m]);
  }

  sgdUpdate(w: Tensor, g: Tensor, buf: Tensor | null, s: SgdStep): void {
    const n = w.size;
    checkTensor('sgdUpdate', 'w', w, n);
    checkTensor('sgdUpdate', 'g', g, n);
    if (s.momentum !== 0) {
      if (!buf) throw new Error('sgdUpdate: momentum needs a buffer');
      checkTensor('sgdUpdate', 'buf', buf, n);
    }
    const flags = (s.nesterov ? 1 : 0) | (s.first ? 2 : 0);
    const bits = [f32Bits(s.lr), f32Bits(s.momentum), f32Bits(s.weightDecay), flags];
    const bufPtr = s.momentum !== 0 ? buf!.ptr : 0;
    this.runElements('sgdUpdate', 'sgd', n, (lo, hi) => [w.ptr + lo * 4, g.ptr + lo * 4, bufPtr && bufPtr + lo * 4, hi - lo, ...bits]);
  }

  adamUpdate(w: Tensor, g: Tensor, m: Tensor, v: Tensor, s: AdamStep): void {
    const n = w.size;
    for (const [role, t] of [['w', w], ['g', g], ['m', m], ['v', v]] as const) checkTensor('adamUpdate', role, t, n);
    const bits = [s.beta1, s.beta2, s.eps, s.stepSize, s.invC2, s.weightDecay, s.decoupled ? s.lr * s.weightDecay : 0].map(f32Bits);
    this.runElements('adamUpdate', 'adam', n, (lo, hi) => [w.ptr + lo * 4, g.ptr + lo * 4, m.ptr + lo * 4, v.ptr + lo * 4, hi - lo, ...bits, s.decoupled ? 1 : 0]);
  }

  /**
   * A contract kernel the module exports and this class does not wrap, bound by the positional
   * convention: each Tensor argument becomes (pointer, element count), null becomes (0, 0), a
   * boolean 0/1, a number itself; the kernel runs on this thread. Every tensor must be float32
   * (anything else runs the reference) and contiguous. Undefined when the module lacks `name`.
   */
  positional(name: keyof Kernels): ((...args: unknown[]) => unknown) | undefined {
    const fn = (this.module.exports as unknown as Record<string, ((...a: number[]) => number) | undefined>)[name];
    if (typeof fn !== 'function') return undefined;
    const reference = referenceKernels[name] as (...a: unknown[]) => unknown;
    const bound = (...args: unknown[]): unknown => {
      this.assertNotRecording(name);
      const flat: number[] = [];
      for (const a of args) {
        if (a instanceof Tensor) {
          if (a.dtype !== 'float32') return reference(...args);
          checkTensor(name, 'argument', a, a.size);
          flat.push(a.ptr, a.size);
        } else if (a === null || a === undefined) flat.push(0, 0);
        else if (typeof a === 'boolean') flat.push(a ? 1 : 0);
        else if (typeof a === 'number') flat.push(a);
        else throw new TypeError(`wasm ${name}: a ${typeof a} argument has no positional form (wrap the kernel in WasmKernels)`);
      }
      return fn(...flat);
    };
    return Object.defineProperty(bound, 'name', { value: `wasm ${name}` });
  }

  /** Checks a channel layout against its full-size tensors and [channels] vectors; returns the channel count. */
  private checkLayout(op: string, layout: ChannelLayout, full: Record<string, Tensor>, perChannel: Record<string, Tensor>): number {
    const { outer, channels, inner } = layout;
    checkCounts(op, { outer, channels, inner });
    for (const role in full) checkTensor(op, role, full[role]!, outer * channels * inner);
    for (const role in perChannel) checkTensor(op, role, perChannel[role]!, channels);
    return channels;
  }

  /** Splits channels across threads when the whole tensor is large enough. */
  private runChannels(op: PoolOp, layout: ChannelLayout, args: (c0: number, c1: number) => number[]): void {
    const total = layout.outer * layout.channels * layout.inner;
    if (total === 0) return;
    this.run(op, splitRange(layout.channels, this.partsFor(total, this.splitAt('channel')), 1).map(([c0, c1]) => args(c0, c1)));
  }

  /**
   * Runs `op` over [0, total) split into ranges (multiples of `align`) across threads when total
   * reaches `threshold`; `args(lo, hi)` gives one part's arguments (the tensor kernels use it).
   */
  split(op: PoolOp, total: number, threshold: number, align: number, args: (lo: number, hi: number) => number[]): void {
    if (total === 0) return;
    this.run(op, splitRange(total, this.partsFor(total, threshold), align).map(([lo, hi]) => args(lo, hi)));
  }

  /** Splits n elements into ranges (multiples of 16) across threads when n elements of `kind` are enough work. */
  private runElements(op: PoolOp, kind: WorkKind, n: number, args: (lo: number, hi: number) => number[]): void {
    this.split(op, n, this.splitAt(kind), 16, args);
  }
}

/** Throws unless t is a live contiguous tensor of `dtype` with at least n elements. */
function checkTyped(op: string, role: string, t: Tensor, dtype: DType, n: number): void {
  if (t.dtype !== dtype || !t.isContiguous() || t.size < n) {
    throw new TypeError(`${op}: ${role} must be a contiguous ${dtype} tensor of ${n} elements, got ${t.dtype} ${fmt(t.shape)}`);
  }
  t.assertAlive(op);
}

/** A noise key as the quantize kernels' (noise, seedLo, seedHi, step, stream) arguments. */
function noiseArgs(key: NoiseKey | null): number[] {
  return key ? [1, key.seed >>> 0, Math.floor(key.seed / 4294967296) >>> 0, key.step >>> 0, key.stream >>> 0] : [0, 0, 0, 0, 0];
}

function checkGroups(op: string, l: GroupLayout): void {
  checkCounts(op, { rows: l.rows, rowLength: l.rowLength, groupSize: l.groupSize });
  if (l.groupSize < 1) throw new RangeError(`${op}: groupSize must be >= 1, got ${l.groupSize}`);
}
