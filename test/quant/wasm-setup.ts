// Shared before-hook of the packed-kernel tests: builds build/quant.wasm if needed, loads it over
// the arena and selects the wasm backend.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadQuantKernels, QuantWasmKernels, quantWasmFile, type QuantWasmExports } from '../../src/quant/index.js';
import { useFastestBackend } from '../../src/backends/index.js';

export async function loadQuantWasm(): Promise<QuantWasmKernels> {
  const r = spawnSync(process.execPath, ['scripts/build-quant-kernels.mjs'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const w: QuantWasmExports = await loadQuantKernels(readFileSync(`build/${quantWasmFile()}`));
  assert.equal(useFastestBackend(), 'wasm');
  return new QuantWasmKernels(w);
}
