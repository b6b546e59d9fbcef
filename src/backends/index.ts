/**
 * Backend selection. A backend is a named set of float32 kernels (any subset of `Kernels`);
 * whatever it lacks, and every float64 call, runs on the reference backend.
 */
import type { DType } from '../core/dtype.js';
import type { Kernels } from './kernels.js';
import { referenceKernels } from './reference/index.js';

export interface Backend {
  name: string;
  kernels: Partial<Kernels>;
}

const backends = new Map<string, Backend>([['reference', { name: 'reference', kernels: referenceKernels }]]);
let active: Backend = backends.get('reference')!;
let merged: Kernels = referenceKernels;

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
}

export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b) throw new Error(`setBackend: unknown backend '${name}' (registered: ${[...backends.keys()].join(', ')})`);
  active = b;
  merged = { ...referenceKernels, ...b.kernels } as Kernels;
}

export function getBackend(): string {
  return active.name;
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

/**
 * The kernels to use for data of `dtype`: the active backend's for float32 and uint8 (masks, codes),
 * the reference for the rest (float64 gradient checks, integer tensors).
 */
export function kernels(dtype: DType): Kernels {
  return dtype === 'float32' || dtype === 'uint8' ? merged : referenceKernels;
}

export {
  useFastestBackend, registerWasmBackend, startThreads, kernelFile, kernelVariants, setThreads, getThreads, shutdownThreads, wasmVariant, defaultThreads, envThreads,
  loadQuantKernels, quantKernels, quantWasmFile, useQuantKernels, QuantWasmKernels, type QuantWasmExports,
} from './wasm/index.js';
