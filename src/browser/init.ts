/**
 * Starting the engine in a page or a Web Worker: fetch the kernel builds that match the arena's
 * memory (shared when the page is cross-origin isolated), instantiate them, and start the kernel
 * threads as Web Workers over the shared memory. Without cross-origin isolation the unshared build
 * runs single-threaded; results are bit-identical for any thread count, as in Node.
 */
import { arena } from '../core/arena.js';
import {
  getBackend, kernelFile, kernelVariants, loadQuantKernels, quantWasmFile, registerWasmBackend, setBackend, startThreads, wasmVariant,
} from '../backends/index.js';

export interface BrowserOptions {
  /**
   * Where the kernel builds are (kernels[-unshared][-relaxed].wasm, kernels-scalar.wasm,
   * quant[-unshared][-relaxed].wasm: copies of build/): default, next to the bundle that holds
   * this module (`import.meta.url`).
   */
  kernelsUrl?: string | URL;
  /** The engine kernels' bytes (the build matching the memory), instead of fetching them. */
  kernels?: Uint8Array<ArrayBuffer>;
  /** The packed-inference kernels' bytes, instead of fetching them. */
  quantKernels?: Uint8Array<ArrayBuffer>;
  /**
   * Threads in all (the calling thread plus Web Workers); default `navigator.hardwareConcurrency`
   * in a cross-origin-isolated worker, else 1. Blocking waits need a worker: on a page's main
   * thread more than one thread busy-waits, so run training in a Web Worker.
   */
  threads?: number;
}

/** What `initBrowser` set up. */
export interface BrowserSetup {
  /** 'wasm', or 'reference' when no kernel build could be instantiated. */
  backend: string;
  /** The kernel build running ('simd-relaxed', 'simd', 'scalar', 'simd-unshared-relaxed', 'simd-unshared'). */
  variant: string | undefined;
  /** Threads kernels use. */
  threads: number;
  /** Whether the arena's memory is shared (the page is cross-origin isolated). */
  sharedMemory: boolean;
  /** Whether the packed-inference kernels are wasm (else the reference TypeScript ones). */
  quantKernels: boolean;
}

async function fetchBytes(url: URL): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    const response = await fetch(url);
    return response.ok ? new Uint8Array(await response.arrayBuffer()) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads the wasm kernels and starts the threads. Call once, before building models, and await it.
 *
 * @example
 * ```ts
 * import { initBrowser, createModel } from 'slimgrad/browser';
 * const setup = await initBrowser({ threads: 2 }); // { backend: 'wasm', variant: 'simd-relaxed', threads: 2, ... }
 * ```
 */
export async function initBrowser(options: BrowserOptions = {}): Promise<BrowserSetup> {
  const base = new URL(options.kernelsUrl ?? './', import.meta.url);
  const shared = arena().shared;
  let found = false;
  // Bytes passed in are named by the memory they need (the relaxed builds are found by file).
  const variants = options.kernels ? (shared ? (['simd', 'scalar'] as const) : (['simd-unshared'] as const)) : kernelVariants(shared);
  for (const variant of variants) {
    const bytes = options.kernels ?? (await fetchBytes(new URL(kernelFile(variant), base)));
    try {
      found = bytes !== undefined && registerWasmBackend({ variant, bytes }) !== undefined;
    } catch {
      // a build for the other memory kind does not link: try the next one
    }
    if (found) {
      setBackend('wasm');
      break;
    }
  }
  if (options.kernels && !found) {
    throw new Error(`initBrowser: the kernels given do not run on this page's ${shared ? 'shared' : 'unshared'} memory (pass ${kernelFile(shared ? 'simd' : 'simd-unshared')}${shared ? '' : ': the page is not cross-origin isolated'})`);
  }
  let quant = false;
  const quantBytes = options.quantKernels ?? (await fetchBytes(new URL(quantWasmFile(), base)));
  if (quantBytes && WebAssembly.validate(quantBytes)) {
    await loadQuantKernels(quantBytes);
    quant = true;
  }
  const blocking = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  const threads = getBackend() === 'wasm' ? await startThreads(options.threads ?? (shared && blocking ? cores : 1)) : 1;
  return { backend: getBackend(), variant: wasmVariant(), threads, sharedMemory: shared, quantKernels: quant };
}
