/**
 * `slimgrad bench transformer [--json]`: training throughput of the transformer (d=256, 4 heads,
 * 128 tokens, 4 layers, a 10-class sequence classifier, SGD) in three modes: the wasm backend as
 * selected (relaxed-SIMD GEMM where the engine has it, wasm tensor kernels: unary maps, reductions,
 * softmax, cross-entropy, row gathers, strided copies, ...); the same with those tensor kernels on
 * the TypeScript reference; and 'before': the plain SIMD build's GEMM/conv kernels with the
 * reference tensor kernels (what ran before either existed). The modes alternate step by step in
 * one process, so load from other processes hits them alike; the best step of each mode counts.
 *
 * Options: --json, --steps N (timed steps per mode and thread count, default 4), --batch B
 * (default 8), --threads N (the multi-thread count; default: the wasm default).
 */
import { parseArgs } from 'node:util';
import { backward } from '../src/autograd/backward.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { transformer } from '../src/nn/models.js';
import { crossEntropy } from '../src/ops/nnops.js';
import { SGD } from '../src/optim/optimizer.js';
import type { Kernels } from '../src/backends/kernels.js';
import { defaultThreads, kernels, registerBackend, setBackend, setThreads, useFastestBackend } from '../src/backends/index.js';
import { bindKernels, loadKernelModule, WasmKernels } from '../src/backends/wasm/index.js';
import { TensorWasmKernels } from '../src/backends/wasm/tensor.js';
import { Rng } from '../src/util/rng.js';

/** The kernels src/backends/wasm/tensor.ts adds: the 'before' mode runs them on the reference. */
export const TENSOR_KERNELS = ['unary', 'reduce', 'softmax', 'crossEntropy', 'crossEntropyGrad', 'gatherRows', 'scatterAddRows', 'copy', 'channelAdd', 'hardtanhMask', 'dropout', 'avgPool2d', 'avgPool2dGrad'] as const;

export interface TransformerRow {
  mode: (typeof MODES)[number][0];
  threads: number;
  batch: number;
  samplesPerSec: number;
}

const TOKENS = 128;
const MODES = [
  ['wasm tensor kernels', 'wasm'],
  ['reference tensor kernels', 'wasm-reference-tensor'],
  ['before (SIMD GEMM, reference tensor kernels)', 'wasm-before'],
] as const;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean', default: false }, steps: { type: 'string', default: '4' }, batch: { type: 'string', default: '8' }, threads: { type: 'string' } },
  });
  const steps = Number(values.steps), batch = Number(values.batch);
  if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`bench transformer: --steps must be a positive integer, got '${values.steps}'`);
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`bench transformer: --batch must be a positive integer, got '${values.batch}'`);
  const many = values.threads !== undefined ? Number(values.threads) : defaultThreads();
  if (!Number.isInteger(many) || many < 1) throw new UsageError(`bench transformer: --threads must be a positive integer, got '${values.threads}'`);
  if (useFastestBackend() !== 'wasm') throw new Error('bench transformer: the wasm backend is not available (npm run build:kernels)');

  const fast = kernels('float32');
  setBackend('reference');
  const reference = kernels('float32');
  const withReferenceTensor = (base: Partial<Kernels>): Partial<Kernels> => {
    const k: Partial<Kernels> = { ...base };
    for (const name of TENSOR_KERNELS) (k as Record<string, unknown>)[name] = reference[name];
    return k;
  };
  registerBackend({ name: 'wasm-reference-tensor', kernels: withReferenceTensor(fast) });
  // The plain SIMD build on its own pool (the relaxed build, when selected, fuses the GEMM's multiply-adds).
  const plainModule = loadKernelModule('simd');
  if (!plainModule) throw new Error('bench transformer: build/kernels.wasm is missing (npm run build:kernels)');
  const plain = new WasmKernels(plainModule);
  registerBackend({ name: 'wasm-before', kernels: withReferenceTensor(bindKernels(plain, new TensorWasmKernels(plain))) });

  const model = transformer({ dim: 256, heads: 4, layers: 4, tokens: TOKENS, vocab: 256, classes: 10 });
  const rng = new Rng(3);
  const ids = fromValues(Int32Array.from({ length: batch * TOKENS }, () => rng.int(256)), [batch, TOKENS], 'int32', 'parameter');
  const labels = fromValues(Int32Array.from({ length: batch }, () => rng.int(10)), [batch], 'int32', 'parameter');
  const opt = new SGD(model.parameters(), { lr: 0.01 });
  const step = (): number => {
    const t0 = performance.now();
    scope(() => {
      opt.zeroGrad();
      backward(crossEntropy(model.call(ids), labels));
      opt.step();
    });
    return (performance.now() - t0) / 1000;
  };

  const modes = MODES;
  const rows: TransformerRow[] = [];
  for (const threads of many > 1 ? [1, many] : [1]) {
    setThreads(threads);
    plain.setThreads(threads);
    plain.startPool();
    const best = new Map<string, number>();
    for (const [, backend] of modes) {
      setBackend(backend);
      step(); // warm-up
    }
    for (let s = 0; s < steps; s++) {
      for (const [mode, backend] of s % 2 ? [...modes].reverse() : modes) {
        setBackend(backend);
        best.set(mode, Math.min(best.get(mode) ?? Infinity, step()));
      }
    }
    for (const [mode] of modes) rows.push({ mode, threads, batch, samplesPerSec: batch / best.get(mode)! });
  }
  setBackend('wasm');
  plain.shutdown();
  printTable(rows.map((r) => ({ ...r, samplesPerSec: Number(r.samplesPerSec.toFixed(2)) })));
  const rate = (threads: number, mode: TransformerRow['mode']) => rows.find((o) => o.threads === threads && o.mode === mode)!.samplesPerSec;
  const ratios = rows
    .filter((r) => r.mode === MODES[0][0])
    .map((r) => ({ threads: r.threads, speedup: r.samplesPerSec / rate(r.threads, MODES[1][0]), speedupVsBefore: r.samplesPerSec / rate(r.threads, MODES[2][0]) }));
  console.log();
  printTable(ratios.map((r) => ({ ...r, speedup: Number(r.speedup.toFixed(2)), speedupVsBefore: Number(r.speedupVsBefore.toFixed(2)) })));
  if (values.json) printJson({ model: { dim: 256, heads: 4, tokens: TOKENS, layers: 4 }, rows, ratios });
  return 0;
}
