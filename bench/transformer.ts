/**
 * `slimgrad bench transformer [--json]`: training throughput of the transformer (d=256, 4 heads,
 * 128 tokens, 4 layers, a 10-class sequence classifier, SGD) with the wasm tensor kernels (unary
 * maps, reductions, softmax, cross-entropy, row gathers, strided copies, ...) against the same
 * backend with those kernels on the TypeScript reference (what ran before they existed). The two
 * modes alternate step by step in one process, so load from other processes hits both alike; the
 * best step of each mode counts.
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
import { Rng } from '../src/util/rng.js';

/** The kernels src/backends/wasm/tensor.ts adds: the 'before' mode runs them on the reference. */
export const TENSOR_KERNELS = ['unary', 'reduce', 'softmax', 'crossEntropy', 'crossEntropyGrad', 'gatherRows', 'scatterAddRows', 'copy', 'channelAdd', 'hardtanhMask', 'dropout', 'avgPool2d', 'avgPool2dGrad'] as const;

export interface TransformerRow {
  mode: 'wasm tensor kernels' | 'reference tensor kernels';
  threads: number;
  batch: number;
  samplesPerSec: number;
}

const TOKENS = 128;

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
  const before: Partial<Kernels> = { ...fast };
  for (const name of TENSOR_KERNELS) (before as Record<string, unknown>)[name] = reference[name];
  registerBackend({ name: 'wasm-reference-tensor', kernels: before });

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

  const modes = [
    ['wasm tensor kernels', 'wasm'],
    ['reference tensor kernels', 'wasm-reference-tensor'],
  ] as const;
  const rows: TransformerRow[] = [];
  for (const threads of many > 1 ? [1, many] : [1]) {
    setThreads(threads);
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
  printTable(rows.map((r) => ({ ...r, samplesPerSec: Number(r.samplesPerSec.toFixed(2)) })));
  const ratios = rows
    .filter((r) => r.mode === 'wasm tensor kernels')
    .map((r) => ({ threads: r.threads, speedup: r.samplesPerSec / rows.find((o) => o.threads === r.threads && o.mode !== r.mode)!.samplesPerSec }));
  console.log();
  printTable(ratios.map((r) => ({ ...r, speedup: Number(r.speedup.toFixed(2)) })));
  if (values.json) printJson({ model: { dim: 256, heads: 4, tokens: TOKENS, layers: 4 }, rows, ratios });
  return 0;
}
