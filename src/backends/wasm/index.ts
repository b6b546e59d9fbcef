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
import type { Kernels } from '../kernels.js';
import { KERNEL_NAMES } from '../reference/index.js';
import { loadBestKernelModule, loadKernelModule, type KernelVariant } from './loader.js';
import { node } from './node.js';
import { WasmKernels } from './kernels.js';
import { TensorWasmKernels } from './tensor.js';
import { FakeQuantWasmKernels } from './fakequant.js';
import { SmartDealWasmKernels } from './smartdeal.js';
import { onQuantKernelsChange, quantWasmKernels } from './quant.js';

export { WasmKernels } from './kernels.js';
export { loadKernelModule, kernelFile, kernelVariants, type KernelVariant } from './loader.js';
export { loadQuantKernels, quantKernels, quantWasmFile, useQuantKernels, QuantWasmKernels, type QuantWasmExports } from './quant.js';

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
    bindWasmBackend();
  } else if (!loaded) {
    loaded = true;
    const module = loadBestKernelModule();
    if (module) {
      wasm = new WasmKernels(module);
      wasm.setThreads(defaultThreads());
    }
    bindWasmBackend();
  }
  return wasm;
}

/**
 * The kernels of the implementations present (engine module, packed-inference module), bound by
 * name: every contract kernel an implementation has as a method, else every one the engine module
 * exports (WasmKernels.positional). Nothing is forwarded by hand: a kernel added to the contract,
 * the reference and an AssemblyScript file is picked up here as it is.
 */
export function bindKernels(engine: WasmKernels | undefined, ...impls: (object | null | undefined)[]): Partial<Kernels> {
  const bound: Record<string, unknown> = {};
  for (const impl of [engine, ...impls]) {
    if (!impl) continue;
    for (const name of KERNEL_NAMES) {
      const f = (impl as Record<string, unknown>)[name];
      if (typeof f === 'function') bound[name] = f.bind(impl);
    }
  }
  for (const name of KERNEL_NAMES) if (!bound[name] && engine) bound[name] = engine.positional(name);
  for (const name of KERNEL_NAMES) if (!bound[name]) delete bound[name];
  return bound as Partial<Kernels>;
}

/** (Re)registers 'wasm' with the kernels loaded now; keeps it selected when it was. */
function bindWasmBackend(): void {
  const quant = quantWasmKernels();
  if (!wasm && !quant) return;
  registerBackend({ name: 'wasm', kernels: bindKernels(wasm, wasm && new TensorWasmKernels(wasm), wasm && new FakeQuantWasmKernels(wasm), wasm && new SmartDealWasmKernels(wasm), quant) });
  if (getBackend() === 'wasm') setBackend('wasm'); // pick up a replaced build
}
onQuantKernelsChange(bindWasmBackend);

/**
 * Selects the fastest backend this engine runs ('wasm' with SIMD or scalar kernels, else
 * 'reference') and returns its name. Call once at startup: it also starts the kernel worker
 * threads (when there is more than one thread), so their fixed memory is taken before training.
 */
export function useFastestBackend(): string {
  const k = registerWasmBackend();
  if (k) {
    setBackend('wasm');
    k.startPool();
  }
  return getBackend();
}

/** Which kernel build the wasm backend runs ('simd-relaxed', 'simd', 'scalar', ...: KernelVariant), or undefined. */
export function wasmVariant(): KernelVariant | undefined {
  return registerWasmBackend()?.module.variant;
}

/**
 * Sets how many threads wasm kernels use (the calling thread plus n - 1 workers); 1 = no workers.
 * Conv layers run one block of images per thread, and kernels with enough work (large GEMMs,
 * pooling, elementwise maps) split across them; results are identical for any count.
 */
export function setThreads(n: number): void {
  const k = registerWasmBackend();
  if (!k) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: expected a positive integer, got ${n}`);
    return; // reference backend: always one thread
  }
  k.setThreads(n);
  if (getBackend() === 'wasm') k.startPool();
}

/**
 * Sets the thread count and starts the worker threads, waiting for them: the way to start threads
 * in a browser (Web Workers over the shared memory of a cross-origin-isolated page; they can only
 * come up once this thread yields). Resolves to the threads kernels will use: 1 where no worker
 * can start (no cross-origin isolation, no wasm backend), the work then runs on this thread alone.
 *
 * @example
 * const threads = await startThreads(navigator.hardwareConcurrency); // inside a Web Worker
 */
export async function startThreads(n: number): Promise<number> {
  setThreads(n);
  const k = registerWasmBackend();
  if (!k) return 1;
  const running = await k.startPoolAsync();
  if (running === 1) k.setThreads(1);
  return running;
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
