/**
 * Finds, validates and instantiates the compiled AssemblyScript kernels (build/*.wasm, made by
 * scripts/build-kernels.mjs) on the arena's memory. Everything here is synchronous so that the
 * backend is usable right after `import`.
 */
import { arena } from '../../core/arena.js';
import { node } from './node.js';

/** The three builds: SIMD on shared memory, scalar on shared memory, SIMD on unshared memory. */
export type KernelVariant = 'simd' | 'scalar' | 'simd-unshared';

const FILES: Record<KernelVariant, string> = {
  simd: 'kernels.wasm',
  scalar: 'kernels-scalar.wasm',
  'simd-unshared': 'kernels-unshared.wasm',
};

/** The exports of kernels/index.ts. Pointers are byte offsets into the arena. */
export interface KernelExports {
  gemm(
    a: number, b: number, c: number, m: number, n: number, k: number, aStride: number, bStride: number, flags: number,
    b0: number, b1: number, i0: number, i1: number, j0: number, j1: number, scratch: number,
  ): void;
  gemmScratchBytes(): number;
  im2col(
    x: number, cols: number, c: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, dh: number, dw: number, outH: number, outW: number, img: number, c0: number, cg: number,
  ): void;
  col2im(
    cols: number, dx: number, c: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number,
    ph: number, pw: number, dh: number, dw: number, outH: number, outW: number, img: number, c0: number, cg: number,
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

/** Reads build/<file> next to the package root (src/backends/wasm under tsx, dist/src/backends/wasm when built). */
function readBuild(file: string): Uint8Array<ArrayBuffer> | undefined {
  if (!node) return undefined;
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
  const wantShared = variant !== 'simd-unshared';
  let result: KernelModule | undefined;
  const binary = bytes ?? readBuild(FILES[variant]);
  if (binary && wantShared === arena().shared && WebAssembly.validate(binary)) {
    const module = new WebAssembly.Module(binary);
    const instance = new WebAssembly.Instance(module, kernelImports(memory));
    result = { variant, module, exports: instance.exports as unknown as KernelExports };
  }
  cache.set(variant, result ?? null);
  return result;
}

/** The fastest build this engine runs: SIMD, else scalar; undefined = stay on the reference backend. */
export function loadBestKernelModule(): KernelModule | undefined {
  const order: KernelVariant[] = arena().shared ? ['simd', 'scalar'] : ['simd-unshared'];
  for (const v of order) {
    const m = loadKernelModule(v);
    if (m) return m;
  }
  return undefined;
}
