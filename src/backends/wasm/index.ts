/**
 * The WebAssembly backend: AssemblyScript SIMD kernels (kernels/, compiled to build/*.wasm) running
 * in place on the arena's memory, optionally over a pool of worker threads.
 *
 * @example
 * ```ts
 * import { useFastestBackend, setThreads } from 'slimgrad';
 * useFastestBackend(); // 'wasm' where WebAssembly is available, else 'reference'
 * setThreads(1);       // single-threaded kernels (default: all cores, or SLIMGRAD_THREADS)
 * ```
 */
import { getBackend, registerBackend, setBackend } from '../index.js';
import { loadBestKernelModule, loadKernelModule, type KernelVariant } from './loader.js';
import { node } from './node.js';
import { WasmKernels } from './kernels.js';

export { WasmKernels } from './kernels.js';
export { loadKernelModule, type KernelVariant } from './loader.js';

let wasm: WasmKernels | undefined;
let loaded = false;

/** SLIMGRAD_THREADS as a number, undefined when unset; a RangeError naming the variable when invalid. */
export function envThreads(): number | undefined {
  const env = typeof process !== 'undefined' ? process.env?.SLIMGRAD_THREADS : undefined;
  if (env === undefined || env === '') return undefined;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`SLIMGRAD_THREADS must be a positive integer, got '${env}'`);
  return n;
}

/**
 * Threads from SLIMGRAD_THREADS, else the cores available (1 outside Node). An invalid
 * SLIMGRAD_THREADS is ignored with a warning (importing the library never throws over it; the CLI
 * refuses it with a one-line message).
 */
export function defaultThreads(): number {
  try {
    const n = envThreads();
    if (n !== undefined) return n;
  } catch (e) {
    if (typeof process !== 'undefined') process.emitWarning(`${(e as Error).message}; using all cores`);
  }
  return node ? node.os.availableParallelism() : 1;
}

/**
 * Registers the backend 'wasm' (idempotent) and returns its kernels, or undefined when this engine
 * cannot run any kernel build. `bytes` supplies the binary of `variant` where there is no file
 * system (browsers: fetch build/kernels-unshared.wasm, or build/kernels.wasm when cross-origin isolated).
 */
export function registerWasmBackend(options: { variant?: KernelVariant; bytes?: Uint8Array<ArrayBuffer> } = {}): WasmKernels | undefined {
  if (options.variant || options.bytes) {
    const module = loadKernelModule(options.variant ?? 'simd', options.bytes);
    if (!module) return undefined;
    wasm?.shutdown();
    wasm = new WasmKernels(module);
    wasm.setThreads(defaultThreads());
    loaded = true;
  } else if (!loaded) {
    loaded = true;
    const module = loadBestKernelModule();
    if (module) {
      wasm = new WasmKernels(module);
      wasm.setThreads(defaultThreads());
    }
  }
  if (wasm) {
    // A plain object: setBackend spreads the kernels, which would drop class methods.
    const k = wasm;
    registerBackend({
      name: 'wasm',
      kernels: {
        gemm: (a, b, c, args) => k.gemm(a, b, c, args),
        im2col: (x, cols, g, img, c0, cg, images) => k.im2col(x, cols, g, img, c0, cg, images),
        col2im: (cols, dx, g, img, c0, cg, images) => k.col2im(cols, dx, g, img, c0, cg, images),
        maxPool2d: (x, out, index, g) => k.maxPool2d(x, out, index, g),
        maxPool2dGrad: (gy, index, dx, g) => k.maxPool2dGrad(gy, index, dx, g),
        channelMoments: (x, mean, variance, layout) => k.channelMoments(x, mean, variance, layout),
        channelAffine: (x, out, args, layout) => k.channelAffine(x, out, args, layout),
        channelGradSums: (g, x, mean, invStd, sumG, sumGXhat, layout) => k.channelGradSums(g, x, mean, invStd, sumG, sumGXhat, layout),
        reluMask: (x, y, mask, slope) => k.reluMask(x, y, mask, slope),
        maskMul: (g, mask, out, scaleOff) => k.maskMul(g, mask, out, scaleOff),
        binary: (op, a, b, out) => k.binary(op, a, b, out),
        sgdUpdate: (w, g, buf, step) => k.sgdUpdate(w, g, buf, step),
        adamUpdate: (w, g, m, v, step) => k.adamUpdate(w, g, m, v, step),
      },
    });
    if (getBackend() === 'wasm') setBackend('wasm'); // pick up a replaced build
  }
  return wasm;
}

/**
 * Selects the fastest backend this engine runs ('wasm' with SIMD or scalar kernels, else
 * 'reference') and returns its name. Call once at startup.
 */
export function useFastestBackend(): string {
  if (registerWasmBackend()) setBackend('wasm');
  return getBackend();
}

/** Which kernel build the wasm backend runs ('simd', 'scalar', 'simd-unshared'), or undefined. */
export function wasmVariant(): KernelVariant | undefined {
  return registerWasmBackend()?.module.variant;
}

/**
 * Sets how many threads wasm kernels use (the calling thread plus n - 1 workers); 1 = no workers.
 * Large GEMMs and im2col/col2im are split across them; results are identical for any count.
 */
export function setThreads(n: number): void {
  const k = registerWasmBackend();
  if (!k) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: expected a positive integer, got ${n}`);
    return; // reference backend: always one thread
  }
  k.setThreads(n);
}

/** Threads wasm kernels use (1 when the wasm backend is unavailable). */
export function getThreads(): number {
  return registerWasmBackend()?.threads ?? 1;
}

/**
 * Terminates the worker threads. Optional (workers never keep the process alive); a later large
 * kernel call starts them again.
 */
export function shutdownThreads(): void {
  wasm?.shutdown();
}
