/**
 * Finds, validates and instantiates the compiled AssemblyScript kernels (build/*.wasm, made by
 * scripts/build-kernels.mjs) on the arena's memory. Everything here is synchronous so that the
 * backend is usable right after `import`.
 */
import { arena } from '../../core/arena.js';
import { node } from './node.js';
import type { TensorKernelExports } from './tensor.js';

/**
 * The builds: SIMD with relaxed SIMD (fused multiply-add), SIMD and scalar on shared memory; SIMD
 * with and without relaxed SIMD on unshared memory.
 */
export type KernelVariant = 'simd-relaxed' | 'simd' | 'scalar' | 'simd-unshared-relaxed' | 'simd-unshared';

const FILES: Record<KernelVariant, string> = {
  'simd-relaxed': 'kernels-relaxed.wasm',
  simd: 'kernels.wasm',
  scalar: 'kernels-scalar.wasm',
  'simd-unshared-relaxed': 'kernels-unshared-relaxed.wasm',
  'simd-unshared': 'kernels-unshared.wasm',
};

/** (module (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))) */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11,
]);
let engineRelaxed: boolean | undefined;

/**
 * Whether the relaxed-SIMD builds are to be used: this engine validates relaxed SIMD and
 * SLIMGRAD_RELAXED_SIMD is not 0. Node 20 (V8 11.3) has relaxed SIMD behind
 * --experimental-wasm-relaxed-simd (on by default from Node 22): the first call turns that flag on
 * (it only adds instructions) when the probe does not validate without it. SLIMGRAD_RELAXED_SIMD=0
 * keeps the plain builds: their multiply-adds round twice, as on every machine, where the fused
 * ones round once (results then differ in the last bits between CPUs with and without FMA).
 */
export function relaxedSimd(): boolean {
  const env = typeof process !== 'undefined' ? process.env?.SLIMGRAD_RELAXED_SIMD : undefined;
  if (env === '0') return false;
  if (engineRelaxed === undefined) {
    if (!WebAssembly.validate(RELAXED_PROBE) && node) node.v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    engineRelaxed = WebAssembly.validate(RELAXED_PROBE);
  }
  return engineRelaxed;
}

/** The builds that run on shared (or unshared) memory, fastest first. */
export function kernelVariants(shared: boolean): KernelVariant[] {
  const fused = relaxedSimd();
  if (shared) return fused ? ['simd-relaxed', 'simd', 'scalar'] : ['simd', 'scalar'];
  return fused ? ['simd-unshared-relaxed', 'simd-unshared'] : ['simd-unshared'];
}

/** The exports of kernels/index.ts. Pointers are byte offsets into the arena. */
/** The file name of a build (in build/, and next to a browser bundle). */
export function kernelFile(variant: KernelVariant): string {
  return FILES[variant];
}

export interface KernelExports extends TensorKernelExports {
  gemm(
    a: number, b: number, c: number, m: number, n: number, k: number, aStride: number, bStride: number, flags: number,
    b0: number, b1: number, i0: number, i1: number, j0: number, j1: number, scratch: number,
  ): void;
  gemmScratchBytes(): number;
  convGemm(
    a: number, x: number, c: number, m: number, flags: number, aStride: number, cStride: number, img0: number, images: number,
    i0: number, i1: number, j0: number, j1: number, scratch: number,
    ch: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, dh: number, dw: number,
    oh: number, ow: number, c0: number, cg: number,
  ): void;
  im2col(
    x: number, cols: number, c: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, dh: number, dw: number, outH: number, outW: number, img: number, c0: number, cg: number,
    images: number, imageStride: number,
  ): void;
  col2im(
    cols: number, dx: number, c: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, dh: number, dw: number, outH: number, outW: number, img: number, c0: number, cg: number,
    images: number, imageStride: number,
  ): void;
  /** src/compress/quantize.ts groupRanges / quantizeGroups on float32 x and float64 meta, bit for bit (kernels/quantize.ts). */
  groupRanges(x: number, rowFrom: number, rowTo: number, rowLength: number, groupSize: number, ranges: number): void;
  quantizeGroups(
    x: number, rowFrom: number, rowTo: number, rowLength: number, groupSize: number, bits: number, noise: number,
    seedLo: number, seedHi: number, step: number, stream: number, meta: number, codes: number,
  ): void;
  /** groupRanges + metaFromRanges + quantizeGroups per group (half: fp16 metadata); stores 1 at status and stops when fp16 cannot hold a group. */
  groupQuantize(
    x: number, rowFrom: number, rowTo: number, rowLength: number, groupSize: number, bits: number, noise: number,
    seedLo: number, seedHi: number, step: number, stream: number, half: number, meta: number, codes: number, status: number,
  ): void;
  /** Inverse of quantizeGroups on float32 meta and output, bit for bit with dequantizeGroups in quantize.ts. */
  dequantizeGroups(codes: number, meta: number, rowFrom: number, rowTo: number, rowLength: number, groupSize: number, bits: number, out: number): void;
  /** 0/1 uint8 mask -> LSB-first bits (every byte written); the index of the first value not 0 or 1, or -1. */
  packMask(mask: number, n: number, bits: number): number;
  /** Inverse of packMask. */
  unpackMask(bits: number, n: number, mask: number): void;
  /** float32 -> fp16 (format 0) / bf16 (1) patterns and back, values [from, to) (kernels/half.ts). */
  halfEncode(x: number, n: number, out: number, format: number, from: number, to: number): void;
  halfDecode(src: number, n: number, out: number, format: number, from: number, to: number): void;
  /** COMET chunks [from, to) of x into regions of `region` bytes at out (chunk `first` at out), their lengths (u32) at lens (kernels/comet.ts). */
  cometEncode(x: number, n: number, boundBits: number, out: number, region: number, lens: number, first: number, from: number, to: number): void;
  /** COMET chunks [from, to) of the size-byte stream at src into out, with COMET_DECODE_SCRATCH bytes at scratch; stores 1 at status on a corrupt chunk. */
  cometDecode(src: number, size: number, n: number, out: number, status: number, scratch: number, from: number, to: number): void;
  maxPool2d(
    x: number, out: number, index: number, planes: number, h: number, w: number, kh: number, kw: number,
    sh: number, sw: number, ph: number, pw: number, outH: number, outW: number,
  ): void;
  maxPool2dGrad(
    gy: number, index: number, dx: number, planes: number, h: number, w: number, kh: number, kw: number,
    sh: number, sw: number, ph: number, pw: number, outH: number, outW: number,
  ): void;
  /** kernels/elementwise.ts: per-channel kernels over channels [c0, c1); float arguments as f32 bits. */
  channelMoments(x: number, outer: number, C: number, inner: number, c0: number, c1: number, mean: number, variance: number): void;
  channelAffine(
    x: number, out: number, outer: number, C: number, inner: number, c0: number, c1: number,
    mean: number, scale: number, shift: number, u: number, uScale: number, hasU: number,
  ): void;
  channelGradSums(
    g: number, x: number, outer: number, C: number, inner: number, c0: number, c1: number,
    mean: number, invStd: number, sumG: number, sumGXhat: number,
  ): void;
  reluMask(x: number, y: number, mask: number, n: number, slopeBits: number, hasMask: number): void;
  maskMul(g: number, mask: number, out: number, n: number, scaleOffBits: number): void;
  binary(op: number, a: number, b: number, out: number, lo: number, hi: number, m: number): void;
  sgdUpdate(w: number, g: number, buf: number, n: number, lrBits: number, muBits: number, wdBits: number, flags: number): void;
  adamUpdate(
    w: number, g: number, m: number, v: number, n: number, b1Bits: number, b2Bits: number, epsBits: number,
    stepSizeBits: number, invC2Bits: number, wdBits: number, lrWdBits: number, flags: number,
  ): void;
}

export interface KernelModule {
  variant: KernelVariant;
  /** Compiled once; worker threads instantiate the same module on the same memory. */
  module: WebAssembly.Module;
  exports: KernelExports;
}

/** Imports every build needs besides the memory (the stub runtime's abort, unused with --noAssert). */
export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      abort: () => {
        throw new Error('wasm kernel aborted');
      },
    },
  };
}

/**
 * The binary of a build, read from build/ next to the package root (src/backends/wasm under tsx,
 * dist/src/backends/wasm when compiled); undefined without a file system or when not built.
 */
export function kernelBinary(variant: KernelVariant): Uint8Array<ArrayBuffer> | undefined {
  if (!node) return undefined;
  const file = FILES[variant];
  for (const up of ['../../../', '../../../../']) {
    const url = new URL(`${up}build/${file}`, import.meta.url);
    if (node.fs.existsSync(url)) return node.fs.readFileSync(url);
  }
  return undefined;
}

const cache = new Map<KernelVariant, KernelModule | null>();

/**
 * The given build instantiated on the arena's memory, or undefined when it is missing, this
 * engine cannot validate it (no SIMD, no threads) or its memory kind does not match the arena's.
 * `bytes` supplies the binary where there is no file system (browsers).
 */
export function loadKernelModule(variant: KernelVariant, bytes?: Uint8Array<ArrayBuffer>): KernelModule | undefined {
  if (!bytes && cache.has(variant)) return cache.get(variant) ?? undefined;
  const memory = arena().memory;
  const wantShared = !variant.startsWith('simd-unshared');
  let result: KernelModule | undefined;
  const binary = bytes ?? kernelBinary(variant);
  if (variant.endsWith('-relaxed')) relaxedSimd(); // turns the engine's flag on where needed
  if (binary && wantShared === arena().shared && WebAssembly.validate(binary)) {
    const module = new WebAssembly.Module(binary);
    const instance = new WebAssembly.Instance(module, kernelImports(memory));
    result = { variant, module, exports: instance.exports as unknown as KernelExports };
  }
  cache.set(variant, result ?? null);
  return result;
}

/** The fastest build this engine runs (kernelVariants' order); undefined = stay on the reference backend. */
export function loadBestKernelModule(): KernelModule | undefined {
  for (const v of kernelVariants(arena().shared)) {
    const m = loadKernelModule(v);
    if (m) return m;
  }
  return undefined;
}
