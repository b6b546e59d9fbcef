// The kernel contract, walked: every kernel the reference implements is bound on the wasm
// backend when the compiled module exports it, and every exported kernel is bound (a kernel
// compiled but not reachable through the contract fails here instead of silently never running).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { getBackend, kernels, registerWasmBackend, setBackend } from '../../src/backends/index.js';
import { Tensor } from '../../src/core/tensor.js';
import { KERNEL_NAMES, referenceKernels } from '../../src/backends/reference/index.js';

/** Exports of kernels/index.ts that are not kernels of the contract. */
const HELPERS = new Set(['gemmScratchBytes']);

test('the reference implements every kernel of the contract', () => {
  for (const name of KERNEL_NAMES) assert.equal(typeof referenceKernels[name], 'function', name);
  assert.ok(KERNEL_NAMES.length >= 21, `${KERNEL_NAMES.length} kernels`);
});

test('every kernel the wasm module exports is bound on the wasm backend', () => {
  const wasm = registerWasmBackend();
  assert.ok(wasm, 'wasm kernels not built (npm run build:kernels)');
  const exported = WebAssembly.Module.exports(wasm.module.module).filter((e) => e.kind === 'function' && !HELPERS.has(e.name)).map((e) => e.name);
  const previous = getBackend();
  setBackend('wasm');
  const bound = kernels('float32');
  setBackend(previous);
  const reference = referenceKernels as unknown as Record<string, unknown>;
  const unbound = exported.filter((name) => !(name in reference) || (bound as unknown as Record<string, unknown>)[name] === reference[name]);
  assert.deepEqual(unbound, [], 'compiled kernels the contract never reaches');
  assert.ok(exported.length >= 18);
});

test('no module outside src/backends imports a backend implementation (everything goes through kernels())', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) {
        if (p !== join('src', 'backends')) walk(p);
      } else if (p.endsWith('.ts') && /from '[./]*backends\/(wasm|reference)\//.test(readFileSync(p, 'utf8'))) offenders.push(p);
    }
  };
  walk('src');
  walk('bench');
  assert.deepEqual(offenders, []);
});

test('a kernel bound by the positional convention (fill) matches the reference, and other dtypes run the reference', () => {
  assert.ok(registerWasmBackend(), 'wasm kernels not built (npm run build:kernels)');
  const previous = getBackend();
  setBackend('wasm');
  try {
    const k = kernels('float32');
    assert.notEqual(k.fill, referenceKernels.fill);
    for (const n of [0, 1, 3, 4, 37]) {
      const t = Tensor.empty([n + 2]);
      const inner = t.view([n], [1], 1);
      k.fill(inner, -2.5);
      assert.deepEqual(t.toArray(), [0, ...new Array(n).fill(-2.5), 0], `n = ${n}: writes exactly its elements`);
      t.dispose();
      inner.dispose();
    }
    const bytes = Tensor.empty([5], 'uint8');
    kernels('uint8').fill(bytes, 7);
    assert.deepEqual(bytes.toArray(), [7, 7, 7, 7, 7]);
    bytes.dispose();
  } finally {
    setBackend(previous);
  }
});
