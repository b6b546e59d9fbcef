// Shared test helpers (not a test file: the runner only picks up *.test.ts).
import { fromValues, type Tensor } from '../src/core/tensor.js';
import type { InputSpec } from '../src/ops/index.js';
import type { Rng } from '../src/util/rng.js';
import { BatchNorm } from '../src/nn/layers.js';
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { loadKernelModule, WasmKernels, type KernelVariant } from '../src/backends/wasm/index.js';
import type { Module } from '../src/nn/module.js';

/** A tensor for an op sample's input spec: given values, or normals shaped by the spec. */
export function makeInput(spec: InputSpec, rng: Rng, dtype: 'float32' | 'float64'): Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.values) return fromValues(spec.values(rng), spec.shape, spec.dtype ?? dtype);
  const vals = Array.from({ length: n }, () => {
    let v = rng.normal();
    if (spec.positive) v = Math.abs(v) + 0.5;
    if (spec.awayFromZero && Math.abs(v) < spec.awayFromZero) v = v < 0 ? v - spec.awayFromZero : v + spec.awayFromZero;
    return v;
  });
  return fromValues(vals, spec.shape, spec.dtype ?? dtype);
}

/** Runs a command, returning its exit code and the JSON object on its last stdout line. */
export async function runJson(cmd: { run(args: string[]): Promise<number> }, args: string[]): Promise<{ code: number; json: any }> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  // Only the command's text; the test runner's own (binary) reporter writes pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk !== 'string') return write(chunk, ...rest);
    lines.push(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await cmd.run(args);
    const out = lines.join('').trim().split('\n');
    return { code, json: JSON.parse(out[out.length - 1]!) };
  } finally {
    process.stdout.write = write;
  }
}

/** Trained-like BatchNorm state (statistics away from the defaults; every 5th gamma negative with `negativeGamma`), for conversion tests. */
export function randomizeBatchNorms(model: Module, rng: Rng, negativeGamma = false): void {
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm)) continue;
    const c = m.channels;
    m.gamma.data().set(Float32Array.from({ length: c }, (_, i) => (negativeGamma && i % 5 === 0 ? -1 : 1) * (0.5 + rng.uniform())));
    m.beta.data().set(Float32Array.from({ length: c }, () => rng.normal() * 0.3));
    m.runningMean.data().set(Float32Array.from({ length: c }, () => rng.normal() * 2));
    m.runningVar.data().set(Float32Array.from({ length: c }, () => 0.5 + rng.uniform() * 20));
  }
}

let engines: WasmKernels[] | null = null;

/**
 * A fresh wasm engine of `variant` on `threads` threads that splits every kernel (minSplitNs 0, so
 * small inputs run the split paths), shut down after the calling file's tests.
 */
export function splittingEngine(variant: KernelVariant, threads: number): WasmKernels {
  const module = loadKernelModule(variant);
  assert.ok(module, `build/${variant} kernels missing: run npm run build:kernels`);
  const engine = new WasmKernels(module);
  engine.setThreads(threads);
  engine.minSplitNs = 0;
  if (!engines) {
    const list: WasmKernels[] = (engines = []);
    after(() => list.forEach((e) => e.shutdown()));
  }
  engines.push(engine);
  return engine;
}
