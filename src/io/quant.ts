/** Node file I/O for quantized deployment: deployed-model files and the quant wasm kernels. */
import { existsSync, readFileSync } from 'node:fs';
import type { DeployedModel } from '../quant/runtime.js';
import { decodeDeployed, encodeDeployed } from './deployed-format.js';
import { fsReason } from './checkpoint.js';
import { writeFileAtomic, type OutputOptions } from './write.js';
import { loadQuantKernels, quantWasmFile, type QuantWasmExports } from '../backends/index.js';

/**
 * Writes a deployed model (SGQM format) through a temporary file; returns the bytes written.
 *
 * @example
 * saveDeployed(convert(model, [1, 28, 28]), 'bnn.sgq', { overwrite: false });
 */
export function saveDeployed(model: DeployedModel, path: string, options: OutputOptions = {}): number {
  return writeFileAtomic(path, encodeDeployed(model), options);
}

/** Reads and validates a deployed model file (checksum, every header field). */
export function loadDeployed(path: string): DeployedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read deployed model ${path}: ${fsReason(e)}`);
  }
  return decodeDeployed(bytes, path);
}

/**
 * Loads build/quant.wasm (or the unshared build) from the package root and activates it for
 * deployed models; null when it is not built or this engine cannot run it (TypeScript kernels stay).
 */
export async function loadQuantKernelsFromBuild(): Promise<QuantWasmExports | null> {
  for (const up of ['../../', '../../../']) {
    const url = new URL(`${up}build/${quantWasmFile()}`, import.meta.url);
    if (!existsSync(url)) continue;
    const bytes = readFileSync(url);
    if (!WebAssembly.validate(bytes)) return null;
    return loadQuantKernels(bytes);
  }
  return null;
}
