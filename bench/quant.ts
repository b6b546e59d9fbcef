/**
 * `slimgrad bench quant [--json] [--accuracy --epochs N --seeds S [--plot FILE.svg]] [--presets bnn,xnor,...] [--data-dir DIR]`:
 * quantized networks. Always: binary and int8 GEMM speed-ups over f32 GEMM (single thread), packed
 * model bytes vs float, inference latency of the packed model vs the same network in f32. With
 * --accuracy: trains each preset and its float twin (float LeNet-5, same seed and schedule) on
 * MNIST (t10k: first 8,000 train, last 2,000 test) and reports test accuracy of the *packed*
 * model (conversion included). Without --accuracy the accuracy rows are omitted (no training).
 * --validation scores on the last 1,500 of the 8,000 training items instead (training on the other
 * 6,500), for tuning recipes without reading the test split. Every preset and the float twin train
 * on one schedule (`Recipe`): Adam, peak --lr (default 1e-2), linear warm-up over the first --warmup
 * fraction of the steps (default 0.05), cosine decay to 0, batch 64.
 * `nested` (once-QAT) gives one row per width, `nested:N`, all read from one file, and the same
 * recipe trained separately at each width, `nested-separate:N`; `smartdeal` (SmartDeal QAT) adds
 * `smartdeal-ptq`, the trained float twin decomposed without fine-tuning. --plot writes model
 * size vs accuracy of every row (and the float twin) as SVG.
 *
 * Baselines: `f32` = slimgrad's wasm backend GEMM (register-blocked 4x8 f32x4 microkernel,
 * packed panels; kernels/gemm.ts), run single-threaded; `f32-dot` = the quant module's f32x4
 * kernel with the same 2x4 dot-product tiling as the binary/int8 kernels.
 */
import { readFileSync } from 'node:fs';
import { Rng } from '../src/util/rng.js';
import { parseArgs } from 'node:util';
import { arena } from '../src/core/arena.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { noGrad } from '../src/autograd/mode.js';
import { getBackend } from '../src/backends/index.js';
import { setThreads, useFastestBackend } from '../src/backends/index.js';
import { matmul } from '../src/ops/index.js';
import { createModel } from '../src/nn/models.js';
import type { Module } from '../src/nn/module.js';
import type { Sequential } from '../src/nn/layers.js';
import { Adam } from '../src/optim/optimizer.js';
import { cosineLr, warmup, type Schedule } from '../src/optim/schedule.js';
import { fit } from '../src/train/trainer.js';
import type { Dataset } from '../src/data/dataset.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { writeFileAtomic } from '../src/io/write.js';
import { evaluate } from '../src/train/trainer.js';
import { floatWeights } from '../src/quant/runtime.js';
import { sizeAccuracyPlot, type SizeAccuracyPoint } from './quant-plot.js';
import { compressedVariant, isCompressedPreset, sparseCrossoverRows, sparseVsDense, type CompressedVariant } from './quant-compress.js';
import { loadSplits } from '../src/data/splits.js';
import { loadQuantKernelsFromBuild } from '../src/io/quant.js';
import {
  applyQuantPreset, binaryLenet5, convert, parseQuantPreset, encodeDeployed, larqMnistBnn, layerPlan, ONCE_QAT_WIDTHS, quantPresets, quantTrainingLoss, runDeployed, runPacked, setNestedBits, setQuantProgress,
  distillation, summary, unpackRows, useQuantKernels, withConstraints, wordsFor, type DeployedModel, type MatStage, type QuantWasmExports, type Stage,
} from '../src/quant/index.js';

const INPUT = [1, 28, 28];
const MODEL = 'lenet';

/**
 * Best of `runs` timings (ms per call) of each function, each timing repeated until it takes
 * ≥ minMs; the functions are interleaved run by run so that load from other processes on a
 * shared machine hits all of them alike, and the minimum is the least disturbed run.
 */
export function timeAll(fns: (() => void)[], runs = 7, minMs = 50): number[] {
  fns.forEach((f) => f());
  const best = fns.map(() => Infinity);
  for (let r = 0; r < runs; r++) {
    fns.forEach((fn, i) => {
      let reps = 0;
      const t0 = performance.now();
      do {
        fn();
        reps++;
      } while (performance.now() - t0 < minMs);
      best[i] = Math.min(best[i]!, (performance.now() - t0) / reps);
    });
  }
  return best;
}

/**
 * The fastest single call (ms) of each function, the functions called in turn for `seconds` and
 * at least `calls` times: on a shared machine preemption only lengthens calls, so the minimum over
 * many interleaved calls is the undisturbed time of each (the latency and sparse rows; one call
 * is 0.02-300 ms here).
 */
export function fastestCall(fns: (() => void)[], seconds = 1.5, calls = 20): number[] {
  fns.forEach((f) => f());
  const best = fns.map(() => Infinity), end = performance.now() + seconds * 1000;
  for (let n = 0; n < calls || performance.now() < end; n++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      f();
      best[i] = Math.min(best[i]!, performance.now() - t0);
    });
  }
  return best;
}

interface GemmRow { k: number; kind: 'binary' | 'int8'; speedup: number; speedupVsDot: number; gmacs: number; f32Gmacs: number; variant: string }

/** Binary and int8 GEMM (operands resident in the arena, no packing in the timed region) vs f32. */
function gemmRows(w: QuantWasmExports): GemmRow[] {
  const m = 64, n = 64;
  const rows: GemmRow[] = [];
  for (const k of [512, 1024, 4096]) {
    const a = arena();
    const alloc = (bytes: number, fill: (view: Uint8Array) => void) => {
      const p = a.alloc(bytes);
      fill(new Uint8Array(a.buffer, p, bytes));
      return p;
    };
    const random = (v: Uint8Array) => {
      for (let i = 0; i < v.length; i++) v[i] = (Math.random() * 256) | 0;
    };
    const macs = m * n * k;
    // f32 baseline: the backend GEMM through matmul (A [m, k] x B [n, k]^T), single thread.
    const fa = fromValues(Float32Array.from({ length: m * k }, () => Math.random() - 0.5), [m, k]);
    const fb = fromValues(Float32Array.from({ length: n * k }, () => Math.random() - 0.5), [n, k]);
    const fpa = alloc(m * k * 4, (v) => v.set(new Uint8Array(fa.data().buffer, fa.ptr, m * k * 4)));
    const fpb = alloc(n * k * 4, (v) => v.set(new Uint8Array(fb.data().buffer, fb.ptr, n * k * 4)));
    const po = a.alloc(m * n * 4);
    const words64 = k / 64;
    const ba = alloc(m * k / 8, random), bb = alloc(n * k / 8, random);
    const ia = alloc(m * k, random), ib = alloc(n * k, random);
    const [f32Ms, dotMs, scalarMs, simdMs, i8Ms] = timeAll([
      () => scope(() => void matmul(fa, fb, { transB: true })),
      () => w.f32Gemm(fpa, fpb, po, m, n, k),
      () => w.binaryGemmScalar(ba, bb, po, m, n, words64, k),
      () => w.binaryGemmSimd(ba, bb, po, m, n, words64, k),
      () => w.int8Gemm(ia, ib, po, m, n, k),
    ]) as [number, number, number, number, number];
    const binMs = Math.min(scalarMs, simdMs);
    rows.push({ k, kind: 'binary', speedup: f32Ms / binMs, speedupVsDot: dotMs / binMs, gmacs: macs / binMs / 1e6, f32Gmacs: macs / f32Ms / 1e6, variant: `${scalarMs <= simdMs ? 'i64.popcnt' : 'i8x16.popcnt'} (scalar ${(macs / scalarMs / 1e6).toFixed(0)}, simd ${(macs / simdMs / 1e6).toFixed(0)} GMAC/s)` });
    rows.push({ k, kind: 'int8', speedup: f32Ms / i8Ms, speedupVsDot: dotMs / i8Ms, gmacs: macs / i8Ms / 1e6, f32Gmacs: macs / f32Ms / 1e6, variant: 'i32x4.dot_i16x8_s' });
    fa.dispose();
    fb.dispose();
  }
  return rows;
}

/** OIHW float weights of a packed stage (±1, ternary, int8 or nested codes, SmartDeal reconstruction). */
function floatWeightsOIHW(s: MatStage): Float32Array {
  const K = s.op === 'conv' ? s.inC * s.k * s.k : s.inC;
  if (s.kernel === 'int8') return Float32Array.from(s.weights as Int8Array);
  if (s.kernel !== 'binary') return floatWeights(s);
  if (s.op === 'dense') return unpackRows(s.weights as Uint32Array, s.outC, K, 'binary');
  // Binary conv weights are OHWI with per-tap channel words.
  const kk = s.k * s.k, cw = wordsFor(s.inC), packed = s.weights as Uint32Array, out = new Float32Array(s.outC * K);
  for (let o = 0; o < s.outC; o++) for (let t = 0; t < kk; t++) for (let c = 0; c < s.inC; c++) {
    out[(o * s.inC + c) * kk + t] = (packed[(o * kk + t) * cw + (c >>> 5)]! >>> (c & 31)) & 1 ? -1 : 1;
  }
  return out;
}

/**
 * The float twin of a deployed network: every conv/dense on float32 weights (runPacked's floatConv
 * wasm kernels, the same runtime as the packed model), float activations throughout. A BN + sign threshold becomes the float
 * epilogue direction·(acc − threshold), whose sign is the binarized value, so the twin does the
 * float work of the same network (a binary layer after it sees float input it would binarize).
 */
export function floatEquivalent(d: DeployedModel): DeployedModel {
  return { inputShape: d.inputShape, stages: floatStages(d.stages) };
}

function floatStages(stages: Stage[]): Stage[] {
  return stages.map((s): Stage => {
      if (s.op === 'residual') return { ...s, body: floatStages(s.body), shortcut: floatStages(s.shortcut) };
      if (s.op !== 'conv' && s.op !== 'dense') return s;
      // Dense float32 weights: the sparse mask and TTQ's negative ratio are decoded into them (SBNN's levels are dropped: the twin times the float work only).
      const { threshold, direction, mask: _mask, negRatio: _negRatio, levels: _levels, ...rest } = s;
      let mul = s.mul && s.kernel === 'int8' ? s.mul.map((v) => v / s.inputStep) : s.mul, bias = s.bias;
      if (threshold) {
        mul = Float32Array.from(direction!);
        bias = Float32Array.from(threshold, (t, c) => (direction![c] ? -t * direction![c]! : t >= 0 ? 1 : -1));
      }
      return { ...rest, kernel: 'float', weights: floatWeightsOIHW(s), mul, bias, inputQuantizer: undefined };
  });
}

/** Networks of the latency rows: [model label, preset, builder, input shape (default MNIST; others get seeded uniform images)]. */
const LATENCY_MODELS: [string, string, (seed: number) => Sequential, number[]?][] = [
  ['larq-bnn', 'bnn', (seed) => larqMnistBnn(seed)],
  ['binary-lenet5', 'bnn', (seed) => binaryLenet5(seed)],
  ['xnor-net', 'xnor', (seed) => applyQuantPreset(MODEL, 'xnor', seed)],
  ['lenet5', 'bwn', (seed) => applyQuantPreset(MODEL, 'bwn', seed)],
  ['lenet5', 'twn', (seed) => applyQuantPreset(MODEL, 'twn', seed)],
  ['lenet5', 'w8a8', (seed) => applyQuantPreset(MODEL, 'w8a8', seed)],
  ['lenet5', 'nested', (seed) => applyQuantPreset(MODEL, 'nested', seed)],
  ['lenet5', 'smartdeal', (seed) => applyQuantPreset(MODEL, 'smartdeal', seed)],
  ['lenet5', 'ttq', (seed) => applyQuantPreset(MODEL, 'ttq', seed)],
  ['lenet5', 'pternary', (seed) => applyQuantPreset(MODEL, 'pternary', seed)],
  ['lenet5', 'hq', (seed) => applyQuantPreset(MODEL, 'hq', seed)],
  ['binary-resnet20', 'binary', (seed) => applyQuantPreset('resnet20', 'binary', seed, [3, 32, 32]), [3, 32, 32]],
];

type LatencyRow = { model: string; preset: string; batch: number; packedMs: number; floatMs: number; typescriptMs: number; speedup: number; sparseMs?: number; denseMs?: number };

/**
 * Per-item latency at batch 1 and 32: the packed runtime (runPacked) and the float twin on the same
 * runtime (float32 weights on floatConv), the fastest of calls interleaved for 1.5 s (fastestCall),
 * then the TypeScript deploy runtime (runDeployed) on its own (pairThenTypeScript).
 * BatchNorm statistics come from one training-mode forward on real images (realistic thresholds).
 */
function latencyRows(images: Float32Array, seed: number, presets: string[]): LatencyRow[] {
  const rows: LatencyRow[] = [];
  // Compressed float networks: the deployed (pruned) model vs the unpruned float LeNet-5, and the
  // pruned model on the sparse GEMM vs the dense path.
  for (const preset of presets) {
    const variant = compressedVariant(preset, MODEL, INPUT);
    if (!variant) continue;
    const model = variant.build(seed), twin = convert(variant.build(seed) as Sequential, INPUT);
    variant.finalize(model);
    const deployed = convert(model as Sequential, INPUT);
    for (const batch of [1, 32]) {
      const x = images.subarray(0, batch * 784), shape = [batch, ...INPUT];
      rows.push({ model: 'lenet5', preset, ...timeDeployed(deployed, twin, images, batch), ...sparseVsDense(deployed, x, shape, (fns) => fastestCall(fns)) });
    }
  }
  for (const [name, preset, build, shape = INPUT] of LATENCY_MODELS) {
    const size = shape.reduce((a, b) => a * b, 1), rng = new Rng(seed, 0x1a7);
    const data = shape.join() === INPUT.join() ? images : Float32Array.from({ length: 32 * size }, () => rng.uniform());
    const model = build(seed);
    noGrad(() => scope(() => void model.call(fromValues(data.subarray(0, 32 * size), [32, ...shape]))));
    model.eval();
    const deployed = convert(model, shape), twin = floatEquivalent(deployed);
    model.dispose();
    for (const batch of [1, 32]) {
      const x = data.subarray(0, batch * size), xShape = [batch, ...shape];
      const [packedMs, floatMs, typescriptMs] = pairThenTypeScript(deployed, twin, x, xShape).map((ms) => ms / batch) as [number, number, number];
      rows.push({ model: name, preset, batch, packedMs, floatMs, typescriptMs, speedup: floatMs / packedMs });
    }
  }
  return rows;
}

/** ms per item of the packed runtime, the float twin and the TypeScript runtime at one batch size: fastest of interleaved calls. */
function timeDeployed(deployed: DeployedModel, twin: DeployedModel, images: Float32Array, batch: number) {
  const x = images.subarray(0, batch * 784), shape = [batch, ...INPUT];
  const [packedMs, floatMs, typescriptMs] = pairThenTypeScript(deployed, twin, x, shape).map((ms) => ms / batch) as [number, number, number];
  return { batch, packedMs, floatMs, typescriptMs, speedup: floatMs / packedMs };
}

/**
 * ms per call of runPacked on the packed model and on its float twin (fastest of calls interleaved
 * with each other), then of runDeployed on the packed model (fastest of its own calls). The
 * TypeScript runtime is timed apart: it allocates megabytes per call, and interleaved with it the
 * call after it (the packed model's) ran during the garbage collector's work on that garbage
 * (binary ResNet-20's packed calls at batch 1 measured about 20 % slower, see BENCHMARKS.md).
 */
function pairThenTypeScript(deployed: DeployedModel, twin: DeployedModel, x: Float32Array, shape: number[]): [number, number, number] {
  const [packedMs, floatMs] = fastestCall([() => void runPacked(deployed, x, shape), () => void runPacked(twin, x, shape)]) as [number, number];
  const [typescriptMs] = fastestCall([() => void runDeployed(deployed, x, shape)], 0.5, 5) as [number];
  return [packedMs, floatMs, typescriptMs];
}

function accuracy(d: DeployedModel, data: Dataset): number {
  let correct = 0;
  for (let start = 0; start < data.length; start += 200) {
    const n = Math.min(200, data.length - start);
    const out = runPacked(d, data.values(start, start + n), [n, ...data.itemShape]);
    for (let i = 0; i < n; i++) {
      const row = out.data.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === data.y[start + i]) correct++;
    }
  }
  return correct / data.length;
}

/** A flag's number; NaN for an empty string (which Number() would read as 0). */
const numberOrNaN = (v: string): number => (v.trim() === '' ? NaN : Number(v));

/**
 * The training schedule, the same for every preset and its float twin: Adam (betas 0.9/0.999) at
 * peak rate `lr`, a linear warm-up over the first `warmup` fraction of the steps, then cosine decay
 * to 0 over the rest.
 */
export type Recipe = { lr: number; warmup: number };

/** The learning rate per step of `recipe` over `steps` optimizer steps. */
export function recipeSchedule(recipe: Recipe, steps: number): Schedule {
  const warm = Math.round(recipe.warmup * steps);
  return warm > 0 ? warmup(cosineLr(recipe.lr, steps - warm), warm) : cosineLr(recipe.lr, steps);
}

/**
 * Trains with the preset's constraints and loss (once-QAT for nested models unless `single`; a
 * compressed variant's pruning schedule); returns the test accuracy.
 */
function train(model: Module, trainSet: Dataset, testSet: Dataset, epochs: number, seed: number, recipe: Recipe, single = false, variant: CompressedVariant | null = null, teacher: Module | null = null): number {
  const steps = epochs * Math.ceil(trainSet.length / 64);
  const optimizer = withConstraints(new Adam(model.parameters(), { lr: recipe.lr }), model, steps);
  variant?.train(optimizer, model, steps);
  const distill = teacher ? distillation(model, teacher) : null;
  const loss = distill?.loss ?? (single ? undefined : quantTrainingLoss(model));
  const r = fit(model, trainSet, testSet, { epochs, batchSize: 64, optimizer, seed, schedule: recipeSchedule(recipe, steps), loss });
  distill?.remove();
  optimizer.dispose();
  return r.testAccuracy ?? NaN;
}

/**
 * Plot points: the mean accuracy of each accuracy row label over seeds at its file size
 * (`nested-separate:N` and `smartdeal-ptq` at the size of the form they deploy as), and the float
 * twin at its float32 weight bytes.
 */
export function plotPoints(
  acc: { preset: string; testAccuracy: number; floatTestAccuracy: number; seed: number }[],
  size: { preset: string; packedBytes: number }[],
  floatBytes: number,
): SizeAccuracyPoint[] {
  const bytesOf = (label: string) => size.find((r) => r.preset === label.replace('nested-separate:', 'nested:').replace('smartdeal-ptq', 'smartdeal'))?.packedBytes;
  const labels = [...new Set(acc.map((r) => r.preset))];
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const floatRuns = [...new Map(acc.map((r) => [r.seed, r.floatTestAccuracy])).values()];
  const points: SizeAccuracyPoint[] = [{ label: 'float', group: 'float', bytes: floatBytes, accuracy: mean(floatRuns), seeds: floatRuns.length }];
  for (const label of labels) {
    const runs = acc.filter((r) => r.preset === label), bytes = bytesOf(label);
    if (bytes !== undefined) points.push({ label, group: label.split(':')[0]!, bytes, accuracy: mean(runs.map((r) => r.testAccuracy)), seeds: runs.length });
  }
  return points;
}

type AccuracyRow = { model: string; preset: string; seed: number; testAccuracy: number; fakeQuantAccuracy: number; floatTestAccuracy: number };
type SizeRow = { model: string; preset: string; packedBytes: number; floatBytes: number; summaryBytes: number; ratio: number; weightRatio: number; sparsity?: number };

function writePlot(file: string, acc: AccuracyRow[], size: SizeRow[], schedule: string, json: boolean): void {
  const seeds = new Set(acc.map((r) => r.seed)).size;
  const points = plotPoints(acc, size, 4 * createModel(MODEL, INPUT, 10, 0).parameterCount());
  writeFileAtomic(file, new TextEncoder().encode(sizeAccuracyPlot(points, `MNIST 8k/2k, LeNet-5 variants, ${schedule}, mean of ${seeds} seed(s)`)), { overwrite: true, what: '--plot' });
  if (!json) console.log(`\nwrote ${file}`);
}

/**
 * `--from a.json,b.json`: the rows of earlier `--json` runs (e.g. one process per preset or seed)
 * as one table, one mean per preset and one plot; nothing is trained or timed.
 */
function merge(files: string[], plot: string | undefined, json: boolean): number {
  const runs = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`--from: cannot read ${f}: ${(e as Error).message}`);
    }
    const last = text.trim().split('\n').pop() ?? '';
    let r: { suite?: string; epochs?: number; accuracy?: AccuracyRow[]; size?: SizeRow[]; latency?: unknown[]; gemm?: unknown[] };
    try {
      r = JSON.parse(last);
    } catch {
      throw new UsageError(`--from: ${f} does not end with the JSON line of a \`bench quant --json\` run`);
    }
    if (r.suite !== 'quant' || !Array.isArray(r.accuracy) || !Array.isArray(r.size)) throw new UsageError(`--from: ${f} is not the output of \`bench quant --json\``);
    return r;
  });
  const epochs = [...new Set(runs.filter((r) => r.accuracy!.length).map((r) => r.epochs))];
  const accuracy = runs.flatMap((r) => r.accuracy!);
  const size = [...new Map(runs.flatMap((r) => r.size!).map((row) => [row.preset, row])).values()];
  const labels = [...new Set(accuracy.map((r) => r.preset))];
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const summaryRows = labels.map((preset) => {
    const rows = accuracy.filter((r) => r.preset === preset);
    return { preset, seeds: rows.map((r) => r.seed).join('/'), testAccuracy: mean(rows.map((r) => r.testAccuracy)), floatTestAccuracy: mean(rows.map((r) => r.floatTestAccuracy)), difference: mean(rows.map((r) => r.testAccuracy - r.floatTestAccuracy)) };
  });
  if (!json) {
    printTable(size);
    console.log(`\naccuracy, mean over seeds (${epochs.join(', ')} epochs):`);
    printTable(summaryRows);
  }
  if (plot) writePlot(plot, accuracy, size, `${epochs.join('/')} epochs`, json);
  printJson({
    suite: 'quant', machine: runs.map((r) => (r as { machine?: string }).machine).find(Boolean) ?? null, epochs: epochs.length === 1 ? epochs[0] : epochs,
    accuracy, size, latency: runs.flatMap((r) => r.latency ?? []), gemm: runs.flatMap((r) => r.gemm ?? []), means: summaryRows,
  });
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      accuracy: { type: 'boolean', default: false },
      epochs: { type: 'string', default: '5' },
      presets: { type: 'string', default: [...quantPresets, 'prune:0.9', 'prune-ch:0.5'].join(',') },
      seed: { type: 'string', default: '1' },
      seeds: { type: 'string', default: '1' },
      lr: { type: 'string', default: '1e-2' },
      warmup: { type: 'string', default: '0.05' },
      plot: { type: 'string' },
      nested: { type: 'string', default: 'both' },
      'skip-speed': { type: 'boolean', default: false },
      validation: { type: 'boolean', default: false },
      from: { type: 'string' },
      'data-dir': { type: 'string', default: '../shared/data/mnist-t10k' },
    },
    strict: true,
  });
  const presets = values.presets!.split(',');
  for (const p of presets) {
    let known: boolean;
    try {
      known = quantPresets.includes(parseQuantPreset(p).preset as never);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (!known && !isCompressedPreset(p)) throw new UsageError(`unknown preset '${p}' (available: ${quantPresets.join(', ')}, sbnn:S and bnn-sbnn:S with S in [0.5, 1), prune:S, prune-ch:S with S in [0, 1))`);
  }
  const epochs = Number(values.epochs), seed = Number(values.seed), recipe: Recipe = { lr: numberOrNaN(values.lr!), warmup: numberOrNaN(values.warmup!) };
  if (!Number.isInteger(epochs) || epochs < 1) throw new UsageError(`--epochs must be a positive integer, got '${values.epochs}'`);
  if (!(recipe.lr > 0)) throw new UsageError(`--lr must be a positive number, got '${values.lr}'`);
  if (!(recipe.warmup >= 0 && recipe.warmup < 1)) throw new UsageError(`--warmup must be a fraction of the training steps in [0, 1), got '${values.warmup}'`);
  if (!['once', 'separate', 'both'].includes(values.nested!)) throw new UsageError(`--nested must be once, separate or both, got '${values.nested}'`);
  if (values.from !== undefined) return merge(values.from.split(','), values.plot, values.json!);
  if (values.plot !== undefined && !values.accuracy) throw new UsageError('--plot FILE.svg needs --accuracy (the plot shows accuracy against size)');
  if (values.plot !== undefined && !values.plot.endsWith('.svg')) throw new UsageError(`--plot: expects a FILE.svg path, got '${values.plot}'`);
  useFastestBackend();
  setThreads(1);
  const w = await loadQuantKernelsFromBuild();
  if (!w) throw new Error('bench quant: build/quant.wasm is missing or cannot run here: run `npm run build:kernels` first');
  const machine = `${process.platform} ${process.arch}, Node ${process.versions.node}, backend ${getBackend()} (1 thread)`;

  const gemm = values['skip-speed'] ? [] : gemmRows(w);
  const { train: trainSet, test: testSet } = await loadSplits('mnist', { dataDir: values['data-dir'], seed });
  const seeds = Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) throw new UsageError(`--seeds must be a positive integer, got '${values.seeds}'`);

  const accuracyRows: AccuracyRow[] = [];
  // Accuracy: every preset and its float twin (float LeNet-5), seeds seed, seed+1, ...; the packed model is what is scored.
  for (let r = 0; values.accuracy && r < seeds; r++) {
    const runSeed = seed + r;
    const splits = await loadSplits('mnist', { dataDir: values['data-dir'], seed: runSeed });
    // --validation (for tuning recipes): train on the first 6,500 training items, score on the other 1,500; the test split is not read.
    const [trainR, testR] = values.validation ? splits.train.split(6500) : [splits.train, splits.test];
    const floatModel = createModel(MODEL, INPUT, 10, runSeed);
    const floatTestAccuracy = train(floatModel, trainR, testR, epochs, runSeed, recipe);
    const score = (preset: string, model: Module, fakeQuantAccuracy: number) => {
      model.eval();
      accuracyRows.push({ model: MODEL, preset, seed: runSeed, testAccuracy: accuracy(convert(model, INPUT), testR), fakeQuantAccuracy, floatTestAccuracy });
    };
    const build = (preset: string, variant: CompressedVariant | null = null) => {
      const model = variant ? variant.build(runSeed) : applyQuantPreset(MODEL, preset, runSeed);
      noGrad(() => scope(() => void model.call(fromValues(testR.values(0, 32), [32, ...INPUT]))));
      return model;
    };
    for (const preset of presets) {
      const variant = compressedVariant(preset, MODEL, INPUT);
      const model = build(preset, variant);
      const separateOnly = preset === 'nested' && values.nested === 'separate';
      // DIR-Net on LeNet-5 distils from the float twin (representation-aligned, its classifier input; the Larq BNN's has other dimensions).
      const teacher = preset === 'dirnet' ? floatModel : null;
      const fakeQuantAccuracy = separateOnly ? NaN : train(model, trainR, testR, epochs, runSeed, recipe, false, variant, teacher);
      if (preset !== 'nested') score(preset, model, fakeQuantAccuracy);
      else {
        // One once-QAT model read at every width, then the same recipe trained at each width alone.
        for (const b of separateOnly ? [] : ONCE_QAT_WIDTHS) {
          setNestedBits(model, b);
          score(`nested:${b}`, model, evaluate(model, testR).accuracy);
        }
        for (const b of values.nested === 'once' ? [] : ONCE_QAT_WIDTHS) {
          const single = build(preset);
          setNestedBits(single, b);
          score(`nested-separate:${b}`, single, train(single, trainR, testR, epochs, runSeed, recipe, true));
          single.dispose();
        }
      }
      if (preset === 'smartdeal') {
        // Decomposition of the trained float twin alone (no fine-tuning): same architecture and parameter names.
        const ptq = build(preset);
        ptq.loadStateDict(new Map([...floatModel.stateDict()].map(([k, t]) => [k, { shape: t.shape, values: t.values() }])));
        score('smartdeal-ptq', ptq, evaluate(ptq, testR).accuracy);
        ptq.dispose();
      }
      model.dispose();
    }
    floatModel.dispose();
  }
  const sizeRows: SizeRow[] = [];
  const batch = 32;
  const x = testSet.values(0, batch);
  for (const preset of presets) {
    const variant = compressedVariant(preset, MODEL, INPUT);
    const model = (variant ? variant.build(seed) : applyQuantPreset(MODEL, preset, seed)) as Sequential;
    variant?.finalize(model);
    // Scheduled quantizers at the end of training (hyperspherical pruning reaches its sparsity).
    setQuantProgress(model, 1);
    // One forward initialises data-dependent quantizer state (LSQ steps) before conversion.
    noGrad(() => scope(() => void model.call(fromValues(x, [batch, ...INPUT]))));
    model.eval();
    for (const label of preset === 'nested' ? ONCE_QAT_WIDTHS.map((b) => `nested:${b}`) : [preset]) {
      if (preset === 'nested') setNestedBits(model, Number(label.slice(7)));
      const s = summary(model, INPUT), packedBytes = encodeDeployed(convert(model, INPUT)).length;
      // Weight storage alone: conv/dense weights at their stored bits vs float32.
      const layers = [...model.namedModules()].flatMap(([, m]) => {
        const plan = layerPlan(m);
        return plan ? [{ n: (m as unknown as { weight: { size: number } }).weight.size, bits: plan.weightBits }] : [];
      });
      const weightRatio = layers.reduce((a, l) => a + 32 * l.n, 0) / layers.reduce((a, l) => a + l.bits * l.n, 0);
      // SBNN rows carry their sparsity (the fraction of binary weights at the majority code).
      const sparsity = /sbnn/.test(preset) ? { sparsity: parseQuantPreset(preset).sparsity } : {};
      sizeRows.push({ model: MODEL, preset: label, packedBytes, floatBytes: Math.round(s.floatKiB * 1024), summaryBytes: Math.round(s.memoryBits / 8), ratio: s.floatKiB * 1024 / packedBytes, weightRatio, ...sparsity });
    }
    model.dispose();
  }
  const latency = values['skip-speed'] ? [] : latencyRows(testSet.values(), seed, presets);
  const sparse = values['skip-speed'] ? [] : sparseCrossoverRows((fns) => fastestCall(fns, 1), seed);
  useQuantKernels(null);

  if (!values.json) {
    console.log(`bench quant on ${machine}; GEMM M = N = 64; latency in ms per item (packed: runPacked; float: the float twin on the same runtime's float kernels; typescript: runDeployed)`);
    printTable(gemm.map((r) => ({ k: r.k, kind: r.kind, 'x vs f32': r.speedup, 'x vs f32-dot': r.speedupVsDot, 'GMAC/s': r.gmacs, 'f32 GMAC/s': r.f32Gmacs, kernel: r.variant })));
    console.log('');
    printTable(sizeRows);
    console.log('');
    printTable(latency);
    console.log('\nsparse GEMM vs dense path, one pruned layer (ms per item):');
    printTable(sparse as unknown as Record<string, unknown>[]);
    if (values.accuracy) {
      console.log(`\naccuracy after ${epochs} epochs (Adam lr ${recipe.lr}, ${recipe.warmup * 100} % warm-up, cosine, batch 64; float twin: float LeNet-5):`);
      printTable(accuracyRows);
    }
  }
  if (values.plot) writePlot(values.plot, accuracyRows, sizeRows, `${epochs} epochs`, values.json!);
  printJson({
    suite: 'quant', machine, epochs: values.accuracy ? epochs : 0, recipe: values.accuracy ? recipe : null,
    accuracy: accuracyRows, size: sizeRows, latency, sparse,
    gemm: gemm.map((r) => ({ k: r.k, kind: r.kind, speedup: r.speedup, speedupVsDot: r.speedupVsDot, gmacs: r.gmacs })),
  });
  return 0;
}
