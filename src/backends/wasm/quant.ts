/**
 * The packed-inference kernels of kernels/quant/ (built to build/quant.wasm, or
 * build/quant-unshared.wasm when the arena memory is not shared), running over the arena memory:
 * the contract's binaryGemm, int8Gemm and floatGemm on the 'wasm' backend. Until
 * `loadQuantKernels` succeeds, those run on the reference backend; results are identical
 * (integers) either way.
 *
 * @example
 * await loadQuantKernels(readFileSync(`build/${quantWasmFile()}`));  // Node; fetch() in a browser
 */
import { arena } from '../../core/arena.js';
import { relaxedSimd } from './loader.js';
import { popcount32, wordsFor } from '../../quant/kernels.js';
import type { Int8Grid, Int8Post, Int8Step, Kernels, SignLayout, SignThresholds } from '../kernels.js';
import { convOut, type ConvShape } from '../../quant/kernels.js';
import { keptLists, smartdealGemm, type SmartDealFactors } from '../../quant/smartdeal.js';

export interface QuantWasmExports {
  binaryGemmScalar(a: number, b: number, out: number, m: number, n: number, words64: number, k: number): void;
  binaryGemmSimd(a: number, b: number, out: number, m: number, n: number, words64: number, k: number): void;
  int8Gemm(a: number, b: number, out: number, m: number, n: number, rowBytes: number): void;
  f32Gemm(a: number, b: number, out: number, m: number, n: number, rowFloats: number): void;
  binaryConvGemm(
    x: number, wr: number, sat: number, tab: number, sgn: number, tq: number, mul: number, bias: number, cols: number, acc: number, out: number, signs: number,
    n: number, h: number, wd: number, c: number, o: number, k: number, stride: number, pad: number, oh: number, ow: number, residual: number,
  ): void;
  packSignsPacked(x: number, thr: number, dir: number, out: number, kind: number, c: number, p: number, channelsLast: number, b0: number, b1: number): void;
  maxPoolPacked(x: number, out: number, h: number, w: number, cw: number, k: number, p0: number, p1: number): void;
  smartdealGemm4(x: number, rows: number, G: number, bc: number, coef: number, ko: number, kg: number, kept: number, z: number, out: number, outC: number): void;
  sparseGemmF32(rowPtr: number, cols: number, vals: number, x: number, out: number, rows: number, k: number, p: number, b0: number, b1: number): void;
  int8ConvF32(
    x: number, w: number, mul: number, bias: number, codes: number, bases: number, acc: number, out: number,
    n: number, c: number, h: number, wd: number, o: number, k: number, stride: number, pad: number, oh: number, ow: number, tapBytes: number,
    step: number, lo: number, hi: number, relu: number, pool: number,
  ): void;
  floatConvF32(
    x: number, wt: number, mul: number, bias: number, thr: number, dir: number, cols: number, acc: number, out: number,
    n: number, c: number, h: number, wd: number, o: number, k: number, stride: number, pad: number, oh: number, ow: number, relu: number, pool: number,
  ): void;
  floatDenseF32(x: number, wr: number, mul: number, bias: number, out: number, n: number, o: number, kr: number, relu: number): void;
}

let loaded: QuantWasmExports | null = null;
/** Called when the loaded module changes (the wasm backend rebinds its kernels). */
let onChange: () => void = () => {};

export function onQuantKernelsChange(f: () => void): void {
  onChange = f;
}

/** Which build matches the arena's memory and the engine (relaxed SIMD where relaxedSimd()). */
export function quantWasmFile(): string {
  return `${arena().shared ? 'quant' : 'quant-unshared'}${relaxedSimd() ? '-relaxed' : ''}.wasm`;
}

/** Instantiates the kernels over the arena memory and binds them to the 'wasm' backend. */
export async function loadQuantKernels(bytes: BufferSource): Promise<QuantWasmExports> {
  const { instance } = await WebAssembly.instantiate(bytes, { env: { memory: arena().memory } });
  useQuantKernels(instance.exports as unknown as QuantWasmExports);
  return loaded!;
}

/** The loaded kernels, or null (reference kernels in use). */
export function quantKernels(): QuantWasmExports | null {
  return loaded;
}

/** Selects the packed kernels of the 'wasm' backend: loaded wasm exports, or null for the reference (benchmarks compare both). */
export function useQuantKernels(kernels: QuantWasmExports | null): void {
  loaded = kernels;
  onChange();
}

/** The contract's packed GEMMs on the loaded module, or null when none is loaded. */
export function quantWasmKernels(): QuantWasmKernels | null {
  return loaded && new QuantWasmKernels(loaded);
}

/** Padding of every row to 128 bits, in elements of each operand type. */
const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** A scratch block in the arena, freed by `release`. */
class Scratch {
  private blocks: [number, number][] = [];
  alloc(bytes: number): number {
    const ptr = arena().alloc(bytes);
    this.blocks.push([ptr, bytes]);
    return ptr;
  }
  /** The arena address of `src`: itself when it is a view of arena memory, else a copy (0 for null). */
  copy(src: Uint32Array | Int32Array | Float32Array | Int8Array | null): number {
    if (!src) return 0;
    const kept = resident.address(src);
    if (kept) return kept;
    if (src.buffer === arena().buffer) return src.byteOffset;
    const ptr = this.alloc(Math.max(4, src.byteLength));
    new Uint8Array(arena().buffer, ptr, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return ptr;
  }
  release(): void {
    for (const [p, b] of this.blocks) arena().free(p, b);
    this.blocks = [];
  }
}

/** Copies `rows` rows of `rowLen` elements into the arena at a padded stride (zero padding). */
function stage<T extends Uint32Array | Int8Array | Float32Array>(s: Scratch, src: T, rows: number, rowLen: number, stride: number): number {
  const bytes = src.BYTES_PER_ELEMENT;
  const ptr = s.alloc(rows * stride * bytes);
  const Ctor = src.constructor as new (b: ArrayBufferLike, o: number, l: number) => T;
  const dst = new Ctor(arena().buffer, ptr, rows * stride);
  dst.fill(0);
  if (stride === rowLen) dst.set(src.subarray(0, rows * rowLen) as never);
  else for (let r = 0; r < rows; r++) dst.set(src.subarray(r * rowLen, (r + 1) * rowLen) as never, r * stride);
  return ptr;
}

/**
 * Stages A (m rows) and B (n rows) of `rowLen` elements at `stride` in the arena, runs `kernel`
 * on (a, b, out) pointers and copies the m x n result out as `Out`.
 */
type Out<R> = new (buffer: ArrayBufferLike, offset: number, length: number) => R;

/** Runs `kernel` with `length` elements of output in the arena (pointer passed), copied out as `Ctor`. */
function withOutput<R extends Uint32Array | Int32Array | Float32Array>(s: Scratch, Ctor: Out<R>, length: number, kernel: (out: number) => void): R {
  try {
    const kept = resident.take(length * 4), out = kept || s.alloc(Math.max(4, length * 4));
    kernel(out);
    return output(Ctor, out, length, kept !== 0);
  } finally {
    s.release();
  }
}

function stagedGemm<T extends Uint32Array | Int8Array | Float32Array, R extends Int32Array | Float32Array>(
  a: T, b: T, m: number, n: number, rowLen: number, stride: number,
  Out: new (buffer: ArrayBufferLike, offset: number, length: number) => R,
  kernel: (pa: number, pb: number, po: number) => void,
): R {
  const s = new Scratch();
  try {
    const pa = stage(s, a, m, rowLen, stride), pb = stage(s, b, n, rowLen, stride), po = s.alloc(m * n * 4);
    kernel(pa, pb, po);
    return new Out(arena().buffer, po, m * n).slice() as R;
  } finally {
    s.release();
  }
}

const pad16 = (bytes: number): number => Math.ceil(Math.max(bytes, 16) / 16) * 16;

/**
 * The int8Conv scratch: one arena block kept between calls when at most KEEP bytes (a deployed
 * model at small batches then allocates nothing per layer), else taken and freed per call.
 */
const KEEP = 1 << 20;
const scratch = {
  ptr: 0,
  bytes: 0,
  /** A block of at least `bytes` bytes. */
  take(bytes: number): number {
    if (bytes <= this.bytes) return this.ptr;
    if (bytes > KEEP) return arena().alloc(bytes, 'short');
    if (this.bytes) arena().free(this.ptr, this.bytes);
    this.ptr = arena().alloc(bytes, 'fixed');
    this.bytes = bytes;
    return this.ptr;
  },
  /** Returns a block from `take(bytes)`. */
  give(ptr: number, bytes: number): void {
    if (bytes > KEEP) arena().free(ptr, bytes);
  },
};

/**
 * Stage outputs kept in the arena while a stageScope runs (shared memory only: its views stay
 * valid when the arena grows): bump-allocated from one block, so a deployed model passes its
 * activations from kernel to kernel without copies or JavaScript allocations. The block is kept
 * between scopes when at most RESIDENT_KEEP bytes (sized to the last scope's high-water), else freed.
 */
const RESIDENT_KEEP = 4 << 20;
const resident = {
  depth: 0,
  ptr: 0,
  bytes: 0,
  used: 0,
  /** Blocks taken past the pool during this scope (freed at its end). */
  extra: [] as [number, number][],
  /** Addresses of the views handed out in this scope. */
  views: new WeakMap<ArrayBufferView, number>(),
  /** The pool's address for a `bytes`-byte output, or 0 outside a scope (the caller slices from scratch). */
  take(bytes: number): number {
    if (!this.depth) return 0;
    const size = pad16(bytes);
    if (this.used + size <= this.bytes) {
      this.used += size;
      return this.ptr + this.used - size;
    }
    this.used += size;
    const ptr = arena().alloc(size, 'short');
    this.extra.push([ptr, size]);
    return ptr;
  },
  /** A view of `length` elements at `ptr` of the arena's `buffer`, registered as this scope's. */
  view<R extends ArrayBufferView>(Ctor: Out<R>, ptr: number, length: number, buffer: ArrayBufferLike): R {
    const v = new Ctor(buffer, ptr, length);
    this.views.set(v, ptr);
    return v;
  },
  /** The arena address of `x` when it is an output of this scope, else 0. */
  address(x: ArrayBufferView): number {
    return this.depth ? this.views.get(x) ?? 0 : 0;
  },
  end(): void {
    const want = this.used;
    for (const [p, b] of this.extra) arena().free(p, b);
    this.extra = [];
    this.used = 0;
    this.views = new WeakMap();
    if (want > this.bytes || want > RESIDENT_KEEP) {
      if (this.bytes) arena().free(this.ptr, this.bytes);
      this.ptr = this.bytes = 0;
      if (want <= RESIDENT_KEEP) {
        this.ptr = arena().alloc(want, 'fixed');
        this.bytes = want;
      }
    }
  },
};

/**
 * The output of a stage kernel: written at `ptr` (from resident.take, or inside the scratch block), a view of it in a scope, else a copy.
 * `buffer`: the arena's buffer read after the call's last allocation (on shared memory each read of it costs ~0.25 us).
 */
function output<R extends Uint32Array | Int32Array | Float32Array>(Ctor: Out<R>, ptr: number, length: number, kept: boolean, buffer: ArrayBufferLike = arena().buffer): R {
  return kept ? resident.view(Ctor, ptr, length, buffer) : (new Ctor(buffer, ptr, length).slice() as R);
}

/** A weight array re-laid in the arena for a kernel: built once per weight array and layout, freed when the array is collected. */
interface ArenaLayout {
  key: string;
  ptr: number;
  bytes: number;
}
const layoutCache = new WeakMap<Int8Array | Float32Array | Uint32Array, ArenaLayout>();
const freeLayout = new FinalizationRegistry<{ ptr: number; bytes: number }>(({ ptr, bytes }) => arena().free(ptr, bytes));

/** The arena address of `w`'s cached layout named `key`, or 0: callers test it first, so a stage call allocates no `fill` closure. */
const layoutHit = (w: Int8Array | Float32Array | Uint32Array, key: string): number => {
  const hit = layoutCache.get(w);
  return hit?.key === key ? hit.ptr : 0;
};

/**
 * The arena address of `w` in the layout named `key`: `bytes` zeroed bytes that `fill` writes
 * (given the arena buffer and the address), cached per weight array (one layout per array).
 */
function weightLayout(w: Int8Array | Float32Array | Uint32Array, key: string, bytes: number, fill: (buffer: ArrayBufferLike, ptr: number) => void): number {
  const hit = layoutCache.get(w);
  if (hit?.key === key) return hit.ptr;
  if (hit) {
    freeLayout.unregister(hit);
    arena().free(hit.ptr, hit.bytes);
  }
  const ptr = arena().alloc(bytes, 'fixed');
  new Uint8Array(arena().buffer, ptr, bytes).fill(0);
  fill(arena().buffer, ptr);
  const entry = { key, ptr, bytes };
  layoutCache.set(w, entry);
  freeLayout.register(w, { ptr, bytes }, entry);
  return ptr;
}

/** Taps per 32-bit word in binaryConvGemm's rows (c ≤ 8: four 8-bit slots, c ≤ 16: two 16-bit slots), 0: cw words per tap. */
const tapsPerWord = (c: number): number => (c <= 8 ? 4 : c <= 16 ? 2 : 0);

/**
 * Bytes per pixel of binaryConvGemm's direct GEMM (no im2col rows; a kernel row's k taps in one
 * i64: c ≤ 8 and k ≤ 8, or c ≤ 16 and k ≤ 4), or 0. The same rule as directPitch in kernels/quant/packed.ts.
 */
const directPitch = (c: number, k: number): number => (c <= 8 ? (k <= 8 ? 1 : 0) : c <= 16 && k <= 4 ? 2 : 0);

/** Words per binaryConvGemm weight row: direct, one i64 per kernel row; else the im2col row's taps' words, rounded up to 2 (the i64 GEMM). */
function binaryRowWords(c: number, k: number): number {
  if (directPitch(c, k)) return 2 * k;
  const per = tapsPerWord(c);
  return roundUp(per ? Math.ceil((k * k) / per) : k * k * wordsFor(c), 2);
}

/**
 * Bytes of binaryConvGemm's column area: the direct GEMM's zero-bordered image (8 bytes of slack),
 * or tableGemm's offset image (pitch u16 a pixel), u8 sums (16 bytes a pixel and group of 16
 * channels) and 64 + 32 bytes a group of scratch, or the im2col rows.
 */
function binaryColsBytes(cs: ConvShape, pixels: number): number {
  const pitch = directPitch(cs.c, cs.k), image = cs.n * (cs.h + 2 * cs.pad) * (cs.w + 2 * cs.pad);
  if (!pitch) return pixels * binaryRowWords(cs.c, cs.k) * 4;
  return tableBytes(cs) ? pad16(image * pitch * 2) + pixels * Math.ceil(cs.o / 16) * 16 + 64 + Math.ceil(cs.o / 16) * 32 : image * pitch + 8;
}

/** popcount of each byte value. */
const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, v) => popcount32(v));

/** Largest byte tables of tableGemm (kept in the arena per weight array; each pass reads two 4 KiB tables of them). */
const TABLE_MAX_BYTES = 256 << 10;

/**
 * Bytes of binaryConvGemm's byte tables for a direct conv (kernels/quant/packed.ts tableGemm: [⌈o/16⌉, k·k·pitch, 256] v128),
 * or 0 where the direct GEMM runs instead: popcounts of k·k·c ≥ 255 bits overflow its u8 lanes (255 is its 'always' bound), or the tables exceed TABLE_MAX_BYTES.
 */
function tableBytes(cs: ConvShape): number {
  const pitch = directPitch(cs.c, cs.k), bytes = Math.ceil(cs.o / 16) * cs.k * cs.k * pitch * 4096;
  return pitch && cs.k * cs.k * cs.c < 255 && bytes <= TABLE_MAX_BYTES ? bytes : 0;
}

/**
 * Packed OHWI binary weights [o, k·k·cw] as binaryConvGemm's rows (direct: [o, rw] u32, kernel row
 * i's taps in the i64 of word pair i, tap j at bit 8·pitch·j; else im2col rows of rw words, the
 * taps in 8/16-bit slots for c ≤ 16 or cw words each, zero padded, in channel quads
 * [⌈o/4⌉, rw/2, 4] u64 for binaryGemmQuads), followed by the summed-area table of the weights' tap
 * popcounts: sat [(k+1)², ⌈o/4⌉·4], sat[i, j, o] = Σ over taps (i' < i, j' < j) of popcount(w[o, i', j', ·]).
 */
function binaryConvLayout(w: Uint32Array, cs: ConvShape): { rows: number; sat: number; tab: number } {
  const cw = wordsFor(cs.c), kk = cs.k * cs.k, used = kk * cw, rw = binaryRowWords(cs.c, cs.k), o4 = roundUp(cs.o, 4), per = tapsPerWord(cs.c);
  const pitch = directPitch(cs.c, cs.k), slot = 8 * pitch, k1 = cs.k + 1, tabAt = pad16((o4 * rw + k1 * k1 * o4) * 4), tab = tableBytes(cs);
  const key = `binconv ${cs.o} ${cs.c} ${cs.k}`;
  const rows = layoutHit(w, key) || weightLayout(w, key, tabAt + tab, (buffer, ptr) => {
    const u = new Uint32Array(buffer, ptr, o4 * rw), sat = new Int32Array(buffer, ptr + o4 * rw * 4, k1 * k1 * o4);
    if (tab) {
      // Entry (g, p, v), lane l: popcount(v XOR byte p % pitch of tap ⌊p / pitch⌋'s weight word of channel 16g + l).
      const t = new Uint8Array(buffer, ptr + tabAt, tab), P = kk * pitch;
      for (let o = 0; o < cs.o; o++) {
        for (let p = 0; p < P; p++) {
          const wb = (w[o * kk + Math.floor(p / pitch)]! >>> (8 * (p % pitch))) & 255, at = (Math.floor(o / 16) * P + p) * 4096 + (o % 16);
          for (let v = 0; v < 256; v++) t[at + v * 16] = POPCOUNT8[v ^ wb]!;
        }
      }
    }
    for (let o = 0; o < cs.o; o++) {
      if (slot) for (let t = 0; t < kk; t++) u[o * rw + 2 * Math.floor(t / cs.k) + Math.floor(((t % cs.k) * slot) / 32)] |= w[o * kk + t]! << (((t % cs.k) * slot) % 32);
      else {
        // Im2col rows: word t of the row at u64 t >> 1 of the channel quad, channel o % 4's slot.
        const at = (t: number): number => (Math.floor(o / 4) * rw + (t & ~1)) * 4 + (o % 4) * 2 + (t & 1);
        if (per) for (let t = 0; t < kk; t++) u[at(Math.floor(t / per))] |= w[o * kk + t]! << ((t % per) * (32 / per));
        else for (let t = 0; t < used; t++) u[at(t)] = w[o * used + t]!;
      }
      for (let i = 1; i <= cs.k; i++) {
        for (let j = 1; j <= cs.k; j++) {
          let pop = 0;
          for (let v = 0; v < cw; v++) pop += popcount32(w[o * used + ((i - 1) * cs.k + j - 1) * cw + v]!);
          sat[(i * k1 + j) * o4 + o] = pop + sat[((i - 1) * k1 + j) * o4 + o]! + sat[(i * k1 + j - 1) * o4 + o]! - sat[((i - 1) * k1 + j - 1) * o4 + o]!;
        }
      }
    }
  });
  return { rows, sat: rows + o4 * rw * 4, tab: tab ? rows + tabAt : 0 };
}

/** Float weight rows [o, K] as floatConvF32's [K, ⌈o/4⌉·4] (transposed, zero channels) or floatDenseF32's [o, ⌈K/4⌉·4] rows. */
function floatLayout(w: Float32Array, o: number, K: number, dense: boolean): number {
  const o4 = roundUp(o, 4), kr = roundUp(K, 4);
  const key = `${dense ? 'rows' : 'cols'} ${o} ${K}`;
  return layoutHit(w, key) || weightLayout(w, key, (dense ? o * kr : K * o4) * 4, (buffer, ptr) => {
    const f = new Float32Array(buffer, ptr, dense ? o * kr : K * o4);
    if (dense) for (let r = 0; r < o; r++) f.set(w.subarray(r * K, (r + 1) * K), r * kr);
    else for (let r = 0; r < o; r++) for (let t = 0; t < K; t++) f[t * o4 + r] = w[r * K + t]!;
  });
}

/**
 * The arena address of OIHW int8 weights `w` as the int8 conv kernel's i16 rows: per output
 * channel, k tap rows of `tap` elements, tap row i holding kernel row i's (j, c) weights (the
 * codes' NHWC order) and zeros after them.
 */
function tapRows(w: Int8Array, cs: ConvShape, tap: number): number {
  const { o, c, k } = cs, kk = k * k, K = c * kk, row = k * tap;
  const key = `taps ${o} ${c} ${k} ${tap}`;
  return layoutHit(w, key) || weightLayout(w, key, o * row * 2, (buffer, ptr) => {
    const rows = new Int16Array(buffer, ptr, o * row);
    for (let q = 0; q < o; q++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) rows[q * row + i * tap + j * c + ch] = w[q * K + ch * kk + i * k + j]!;
  });
}

/** The packed GEMMs of the contract (kernels.ts) on a loaded kernels/quant module. */
export class QuantWasmKernels implements Partial<Kernels> {
  /** `simdBinary`: the 128-bit binary GEMM instead of the scalar one (identical results). */
  constructor(readonly exports: QuantWasmExports, readonly simdBinary = false) {}

  binaryGemm(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Int32Array {
    const w = this.exports, kw = wordsFor(k), stride = roundUp(kw, 4);
    return stagedGemm(a, b, m, n, kw, stride, Int32Array, (pa, pb, po) => (this.simdBinary ? w.binaryGemmSimd : w.binaryGemmScalar)(pa, pb, po, m, n, stride / 2, k));
  }

  int8Gemm(a: Int8Array, b: Int8Array, m: number, n: number, k: number): Int32Array {
    const stride = roundUp(k, 16);
    return stagedGemm(a, b, m, n, k, stride, Int32Array, (pa, pb, po) => this.exports.int8Gemm(pa, pb, po, m, n, stride));
  }

  int8Conv(x: Float32Array, w: Int8Array, cs: ConvShape, g: Int8Grid, mul: Float32Array, bias: Float32Array, post: Int8Post = {}): Float32Array {
    return this.int8Convs(x, [{ w, s: cs, g, mul, bias, post }]);
  }

  /**
   * The steps in one scratch block: the activations alternate between two buffers in the arena
   * (copied in once, the last one copied out), each step's codes, pixel bases and accumulators in
   * a shared work area, mul and bias of every step after them (16-byte aligned parts).
   */
  int8Convs(x: Float32Array, steps: readonly Int8Step[]): Float32Array {
    let inLen = x.length, act = x.length, work = 0, params = 0;
    const plan = steps.map(({ w, s: cs, mul, bias, post }, i) => {
      const [oh, ow] = convOut(cs), rows = cs.n * oh * ow, K = cs.c * cs.k * cs.k, tap = roundUp(cs.k * cs.c, 8), pool = post?.pool ?? 0;
      const size = cs.n * cs.o * (pool ? Math.floor(oh / pool) * Math.floor(ow / pool) : oh * ow);
      if (inLen !== cs.n * cs.c * cs.h * cs.w || w.length !== cs.o * K || mul.length !== cs.o || bias.length !== cs.o) {
        throw new RangeError(`int8Conv${steps.length > 1 ? `s step ${i}` : ''}: x [${inLen}], w [${w.length}], mul/bias [${mul.length}, ${bias.length}] do not fit ${JSON.stringify(cs)}`);
      }
      // Work area: codes, then pixel bases and chunk offsets (from `bases`), then accumulators (from `acc`).
      const bases = pad16(2 * cs.n * (cs.h + 2 * cs.pad) * (cs.w + 2 * cs.pad) * cs.c + 16), acc = bases + pad16(rows * 4 + cs.k * tap / 2);
      work = Math.max(work, acc + pad16(rows * cs.o * 4));
      params += 2 * pad16(cs.o * 4);
      inLen = size;
      act = Math.max(act, size);
      // Weight rows first: building them may grow the arena, which replaces its buffer.
      return { oh, ow, tap, pool, size, bases, acc, pw: tapRows(w, cs, tap) };
    });
    if (!plan.length) return x;
    const actBytes = pad16(act * 4), total = 2 * actBytes + params + work, base = scratch.take(total), f32 = new Float32Array(arena().buffer);
    try {
      let src = base, dst = base + actBytes, pp = base + 2 * actBytes;
      const codes = pp + params;
      f32.set(x, src >> 2);
      steps.forEach(({ s: cs, g, mul, bias, post }, i) => {
        const p = plan[i]!, pm = pp, pb = pp + pad16(cs.o * 4);
        pp = pb + pad16(cs.o * 4);
        f32.set(mul, pm >> 2);
        f32.set(bias, pb >> 2);
        this.exports.int8ConvF32(src, p.pw, pm, pb, codes, codes + p.bases, codes + p.acc, dst, cs.n, cs.c, cs.h, cs.w, cs.o, cs.k, cs.stride, cs.pad, p.oh, p.ow, p.tap * 2, g.step, g.lo, g.hi, post?.relu ? 1 : 0, p.pool);
        [src, dst] = [dst, src];
      });
      return f32.slice(src >> 2, (src >> 2) + plan.at(-1)!.size);
    } finally {
      scratch.give(base, total);
    }
  }

  floatConv(x: Float32Array, w: Float32Array, cs: ConvShape, mul: Float32Array | null, bias: Float32Array | null, post: Int8Post = {}): Float32Array {
    return this.runFloatConv(x, w, cs, mul, bias, post, null, Float32Array);
  }

  floatConvSigns(x: Float32Array, w: Float32Array, cs: ConvShape, t: SignThresholds): Uint32Array {
    if (!(t.threshold instanceof Float32Array) || t.threshold.length !== cs.o || t.direction.length !== cs.o) throw new TypeError(`floatConvSigns: float sums need ${cs.o} Float32 thresholds and directions`);
    return this.runFloatConv(x, w, cs, null, null, {}, t, Uint32Array);
  }

  /** floatConv (t null: float NCHW) or floatConvSigns (packed signs) in one kernel call. */
  private runFloatConv<R extends Float32Array | Uint32Array>(
    x: Float32Array, w: Float32Array, cs: ConvShape, mul: Float32Array | null, bias: Float32Array | null, post: Int8Post, t: SignThresholds | null, Ctor: Out<R>,
  ): R {
    const [oh, ow] = convOut(cs), K = cs.c * cs.k * cs.k, pool = post.pool ?? 0, relu = post.relu ? 1 : 0;
    const size = t ? cs.n * oh * ow * wordsFor(cs.o) : cs.n * cs.o * (pool ? Math.floor(oh / pool) * Math.floor(ow / pool) : oh * ow);
    if (x.length !== cs.n * cs.c * cs.h * cs.w || w.length !== cs.o * K || (mul && (mul.length !== cs.o || bias?.length !== cs.o))) {
      throw new RangeError(`floatConv: x [${x.length}], w [${w.length}], mul/bias [${mul?.length}, ${bias?.length}] do not fit ${JSON.stringify(cs)}`);
    }
    // A dense layer (1x1 conv on 1x1 images): rows of x times weight rows, K padded to 4 floats.
    const dense = oh === 1 && ow === 1 && cs.h === 1 && cs.w === 1 && cs.k === 1 && !pool && !t;
    const kr = roundUp(K, 4), p8 = roundUp(oh * ow, 8), pw = floatLayout(w, cs.o, K, dense);
    // In a stage scope: an input from the scope is read in place (unless dense rows need padding), the output goes to the resident pool.
    const xr = !dense || kr === K ? resident.address(x) : 0, outR = resident.take(size * 4);
    // One scratch block: input (dense: padded rows), mul, bias (or thresholds, directions), im2col columns, accumulators, output.
    const px = 0, pm = px + (xr ? 0 : pad16((dense ? cs.n * kr : x.length) * 4)), pb = pm + pad16(cs.o * 4), cols = pb + pad16(cs.o * 4);
    const acc = cols + (dense ? 0 : pad16(K * p8 * 4)), out = acc + (dense ? 0 : pad16(roundUp(cs.o, 4) * p8 * 4));
    const total = out + (outR ? 0 : pad16(size * 4)), base = scratch.take(total), a = arena();
    const xp = xr || base + px, op = outR || base + out, buffer = a.buffer;
    try {
      const f32 = new Float32Array(buffer);
      if (xr) {
        // In place.
      } else if (!dense || kr === K) f32.set(x, (base + px) >> 2);
      else {
        f32.fill(0, (base + px) >> 2, ((base + px) >> 2) + cs.n * kr);
        for (let r = 0; r < cs.n; r++) f32.set(x.subarray(r * K, (r + 1) * K), ((base + px) >> 2) + r * kr);
      }
      if (mul || t) {
        f32.set(mul ?? t!.threshold, (base + pm) >> 2);
        if (t) new Int8Array(buffer).set(t.direction, base + pb);
        else f32.set(bias!, (base + pb) >> 2);
      }
      const m = mul ? base + pm : 0, b = mul ? base + pb : 0;
      if (dense) this.exports.floatDenseF32(xp, pw, m, b, op, cs.n, cs.o, kr, relu);
      else this.exports.floatConvF32(xp, pw, m, b, t ? base + pm : 0, base + pb, base + cols, base + acc, op, cs.n, cs.c, cs.h, cs.w, cs.o, cs.k, cs.stride, cs.pad, oh, ow, relu, pool);
      return output(Ctor, op, size, outR !== 0, buffer);
    } finally {
      scratch.give(base, total);
    }
  }

  stageScope<T>(f: () => T): T {
    // Views must outlive arena growth: only shared memory keeps them (unshared memory detaches its old buffer).
    if (!arena().shared) return f();
    resident.depth++;
    try {
      return f();
    } finally {
      if (--resident.depth === 0) resident.end();
    }
  }

  floatGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
    const stride = roundUp(k, 4);
    return stagedGemm(a, b, m, n, k, stride, Float32Array, (pa, pb, po) => this.exports.f32Gemm(pa, pb, po, m, n, stride));
  }

  binaryConv(x: Uint32Array, w: Uint32Array, cs: ConvShape): Int32Array {
    return this.conv(x, w, cs, null, null, Int32Array);
  }

  binaryConvFloat(x: Uint32Array, w: Uint32Array, cs: ConvShape, mul: Float32Array, bias: Float32Array, residual?: Float32Array): { values: Float32Array; signs: Uint32Array } {
    const [oh, ow] = convOut(cs);
    if (mul.length !== cs.o || bias.length !== cs.o || (residual && residual.length !== cs.n * cs.o * oh * ow)) {
      throw new RangeError(`binaryConvFloat: mul/bias [${mul.length}, ${bias.length}], residual [${residual?.length}] do not fit ${JSON.stringify(cs)}`);
    }
    let signs: Uint32Array = new Uint32Array(0);
    const values = this.conv(x, w, cs, null, { mul, bias, residual, onSigns: (bits) => (signs = bits) }, Float32Array);
    return { values, signs };
  }

  binaryConvSigns(x: Uint32Array, w: Uint32Array, cs: ConvShape, t: SignThresholds): Uint32Array {
    if (!(t.threshold instanceof Int32Array)) throw new TypeError('binaryConvSigns: integer accumulators need Int32 thresholds');
    return this.conv(x, w, cs, t, null, Uint32Array);
  }

  /** Binary conv in one kernel call: int32 accumulators, packed signs under `t`, or float NCHW through `epi` (and its plain signs to epi.onSigns). */
  private conv<R extends Uint32Array | Int32Array | Float32Array>(
    x: Uint32Array, w: Uint32Array, cs: ConvShape, t: SignThresholds | null,
    epi: { mul: Float32Array; bias: Float32Array; residual?: Float32Array; onSigns: (bits: Uint32Array) => void } | null, Ctor: Out<R>,
  ): R {
    const [oh, ow] = convOut(cs), pixels = cs.n * oh * ow, cw = wordsFor(cs.c), kk = cs.k * cs.k;
    if (x.length !== cs.n * cs.h * cs.w * cw || w.length !== cs.o * kk * cw || (t && (t.threshold.length !== cs.o || t.direction.length !== cs.o))) {
      throw new RangeError(`binaryConv: x [${x.length}], w [${w.length}], thresholds [${t?.threshold.length}] do not fit ${JSON.stringify(cs)}`);
    }
    const { rows, sat, tab } = binaryConvLayout(w, cs), size = pixels * (t ? wordsFor(cs.o) : cs.o), signWords = epi ? pixels * wordsFor(cs.o) : 0;
    // In a stage scope: an input from the scope is read in place, the outputs go to the resident pool (a residual from the scope is summed in place).
    const xr = resident.address(x), rr = epi?.residual ? resident.address(epi.residual) : 0;
    const outR = t || epi ? rr || resident.take(size * 4) : 0, signsR = epi ? resident.take(signWords * 4) : 0;
    // One scratch block: input, folded thresholds (sgn, tq) or mul, bias, im2col rows, accumulators (the int32 output), packed or float output, signs.
    const o4 = roundUp(cs.o, 4), px = 0, ps = px + (xr ? 0 : pad16(x.byteLength)), pq = ps + pad16(o4 * 4), cols = pq + pad16(o4 * 4);
    const acc = cols + pad16(binaryColsBytes(cs, pixels)), out = t || epi ? acc + pad16(pixels * cs.o * 4) : acc;
    const ps2 = out + (outR ? 0 : pad16(size * 4));
    const total = ps2 + (signsR ? 0 : pad16(signWords * 4)), base = scratch.take(total), a = arena();
    const xp = xr || base + px, op = outR || base + out, sp = signsR || base + ps2, buffer = a.buffer;
    try {
      if (!xr) new Uint32Array(buffer).set(x, xp >> 2);
      if (t) {
        // −1 iff acc·sgn − tq < 0: direction +1: acc < thr; −1: acc > thr; 0: thr < 0 (constant).
        const i32 = new Int32Array(buffer), s0 = (base + ps) >> 2, q0 = (base + pq) >> 2;
        for (let c = 0; c < o4; c++) {
          const d = c < cs.o ? t.direction[c]! : 0, th = c < cs.o ? t.threshold[c]! : 0;
          i32[s0 + c] = d;
          i32[q0 + c] = d ? d * th : th >= 0 ? 0 : 1;
        }
      }
      if (epi) {
        const f32 = new Float32Array(buffer);
        f32.set(epi.mul, (base + ps) >> 2);
        f32.set(epi.bias, (base + pq) >> 2);
        if (epi.residual && !rr) f32.set(epi.residual, op >> 2);
      }
      this.exports.binaryConvGemm(xp, rows, sat, tab, t ? base + ps : 0, base + pq, epi ? base + ps : 0, base + pq, base + cols, base + acc, op, epi ? sp : 0, cs.n, cs.h, cs.w, cs.c, cs.o, cs.k, cs.stride, cs.pad, oh, ow, epi?.residual ? 1 : 0);
      epi?.onSigns(output(Uint32Array, sp, signWords, signsR !== 0, buffer));
      return rr ? (epi!.residual as R) : output(Ctor, op, size, outR !== 0, buffer);
    } finally {
      scratch.give(base, total);
    }
  }

  packSigns(x: Float32Array | Int32Array, l: SignLayout, t: SignThresholds | null): Uint32Array {
    if (t && (t.threshold instanceof Int32Array) !== (x instanceof Int32Array)) throw new TypeError('packSigns: thresholds must have the values\' type (Int32 or Float32)');
    const s = new Scratch();
    const px = s.copy(x), pt = s.copy(t?.threshold ?? null), pd = s.copy(t?.direction ?? null);
    return withOutput(s, Uint32Array, l.n * l.p * wordsFor(l.c), (out) =>
      this.exports.packSignsPacked(px, pt, pd, out, x instanceof Int32Array ? 1 : 0, l.c, l.p, l.channelsLast ? 1 : 0, 0, l.n));
  }

  /** segment = rank = 4 on f32x4 (float32 accumulation); other shapes run the reference. */
  smartdealGemm(f: SmartDealFactors, x: Float32Array, rows: number): Float32Array {
    if (f.segment !== 4 || f.rank !== 4) return smartdealGemm(f, x, rows);
    const G = Math.ceil(f.K / 4), { keptO, keptG, coeffs } = keptLists(f), s = new Scratch();
    // Basis columns: bc[4j + t] = B[t, j].
    const bc = Float32Array.from({ length: 16 }, (_, i) => f.basis[(i % 4) * 4 + Math.floor(i / 4)]!);
    try {
      const px = stage(s, x, rows, f.K, G * 4), pz = s.alloc(G * 16), out = s.alloc(Math.max(4, rows * f.outC * 4));
      this.exports.smartdealGemm4(px, rows, G, s.copy(bc), s.copy(coeffs), s.copy(keptO), s.copy(keptG), keptO.length, pz, out, f.outC);
      return new Float32Array(arena().buffer, out, rows * f.outC).slice();
    } finally {
      s.release();
    }
  }

  maxPoolSigns(x: Uint32Array, n: number, h: number, w: number, words: number, k: number): Uint32Array {
    const pixels = n * Math.floor(h / k) * Math.floor(w / k), s = new Scratch(), px = s.copy(x);
    return withOutput(s, Uint32Array, pixels * words, (out) => this.exports.maxPoolPacked(px, out, h, w, words, k, 0, pixels));
  }

  sparseGemm(rowPtr: Int32Array, cols: Int32Array, values: Float32Array, x: Float32Array, rows: number, k: number, p: number, batch: number): Float32Array {
    if (rowPtr.length !== rows + 1 || x.length < batch * k * p) throw new RangeError(`sparseGemm: ${rows} rows need ${rows + 1} row pointers (got ${rowPtr.length}) and x of ${batch}x${k}x${p} (got ${x.length})`);
    const s = new Scratch();
    const pr = s.copy(rowPtr), pc = s.copy(cols), pv = s.copy(values), px = s.copy(x);
    return withOutput(s, Float32Array, batch * rows * p, (out) => this.exports.sparseGemmF32(pr, pc, pv, px, out, rows, k, p, 0, batch));
  }
}
