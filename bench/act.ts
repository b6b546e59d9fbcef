/**
 * `slimgrad bench act [--json]`: activation-compressed training.
 *
 * - memory: per model and mode, one real training step: saved-for-backward bytes from the ledger,
 *   the planner's prediction, ratio against fp32, step time and overhead against fp32, and the
 *   relative L2 error of all parameter gradients against the fp32 step (same weights, same batch).
 *   Models: mlp 784-512-512-10, lenet (1x28x28), resnet20 (3x32x32, batch 128), transformer
 *   (d=256, 4 heads, 128 tokens, 4 layers).
 * - maxBatch: ResNet-20's largest batch whose step peak (parameters + gradients + everything the
 *   step allocates, from the ledger) fits the cap (default 512 MiB), per mode, by binary search
 *   on an affine fit of two real steps (`--fit-batches`).
 * - kernels: quantize+pack and unpack throughput (GB/s of fp32), TypeScript and wasm kernel.
 * - accuracy (`--accuracy`): MLP (and/or LeNet-5, `--accuracy-models mlp,lenet`) on MNIST
 *   (../shared/data/mnist-t10k: first 8,000 train, last 2,000 test) for fp32/int4/int2/division
 *   and the extra modes requested (auto:B, mesa, comet), SGD lr 0.05 (cosine decay) momentum 0.9, batch 64, `--epochs` (1), `--seeds` (1).
 *
 * - memory rows of issue 12's modes (auto:2, auto:4, mesa, comet; `comet:EB`, `auto:B` on request)
 *   with `meanBits` (32 / ratio) and, for auto:B, the allocation's mean bits.
 *
 * Options: --json, --quick (small batches), --models mlp,lenet,resnet20,transformer,
 * --modes off,fp16,int8,int4,int2,division,auto:2,auto:4,mesa,comet, --repeat N (step time = fastest of N; default 1,
 * quick 3), --cap-mib 512, --fit-batches 16,32, --no-max-batch, --accuracy,
 * --accuracy-models mlp,lenet, --epochs N, --seeds N, --data DIR.
 */
import { parseArgs } from 'node:util';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { useFastestBackend } from '../src/backends/index.js';
import { fromValues } from '../src/core/tensor.js';
import { loadMnist } from '../src/data/files.js';
import { lenet5, mlp, resnet20, transformer } from '../src/nn/models.js';
import type { Module } from '../src/nn/module.js';
import { crossEntropy } from '../src/ops/index.js';
import { SGD } from '../src/optim/optimizer.js';
import { cosineLr } from '../src/optim/schedule.js';
import { fit } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { Compression } from '../src/compress/act.js';
import { ACT_MODES, parseActSpec, parseMode, type ActMode } from '../src/compress/policy.js';
import { findMaxBatch, fitPeakModel, measureStep, planSavedBytes, recordSaves, type ForwardFn } from '../src/compress/planner.js';
import { packTensor, releasePacked, unpackTensor } from '../src/compress/codecs.js';
import { getBackend, setBackend } from '../src/backends/index.js';

const MiB = 2 ** 20;

interface ModelSpec {
  name: string;
  build: () => Module;
  /** forward(batch) for a model instance. */
  forward: (m: Module) => ForwardFn;
  batch: number;
  quickBatch: number;
}

function images(m: Module, shape: number[]): ForwardFn {
  return (batch) => {
    const r = new Rng(7, batch);
    const n = batch * shape.reduce((a, b) => a * b, 1);
    const x = fromValues(Float32Array.from({ length: n }, () => r.normal()), [batch, ...shape]);
    const y = fromValues(Int32Array.from({ length: batch }, () => r.int(10)), [batch], 'int32');
    return crossEntropy(m.call(x), y);
  };
}

function tokens(m: Module, t: number, vocab: number): ForwardFn {
  return (batch) => {
    const r = new Rng(7, batch);
    const ids = fromValues(Int32Array.from({ length: batch * t }, () => r.int(vocab)), [batch, t], 'int32');
    const y = fromValues(Int32Array.from({ length: batch }, () => r.int(10)), [batch], 'int32');
    return crossEntropy(m.call(ids), y);
  };
}

const MODELS: ModelSpec[] = [
  { name: 'mlp', build: () => mlp([784, 512, 512, 10]), forward: (m) => images(m, [1, 28, 28]), batch: 128, quickBatch: 32 },
  { name: 'lenet', build: () => lenet5(), forward: (m) => images(m, [1, 28, 28]), batch: 128, quickBatch: 32 },
  { name: 'resnet20', build: () => resnet20(), forward: (m) => images(m, [3, 32, 32]), batch: 128, quickBatch: 16 },
  {
    name: 'transformer',
    build: () => transformer({ dim: 256, heads: 4, layers: 4, tokens: 128, vocab: 256, classes: 10 }),
    forward: (m) => tokens(m, 128, 256),
    batch: 8,
    quickBatch: 2,
  },
];

export interface MemoryRow {
  model: string;
  mode: ActMode;
  batch: number;
  savedBytes: number;
  predictedSavedBytes: number;
  ratio: number;
  stepMs: number;
  overhead: number;
  gradRelError: number;
}

export interface MaxBatchRow {
  model: string;
  mode: ActMode;
  capBytes: number;
  maxBatch: number;
  /** Bytes per extra sample and fixed bytes of the fitted peak model. */
  perSampleBytes: number;
  fixedBytes: number;
}

export interface AccuracyRow {
  model: string;
  mode: string;
  seed: number;
  epochs: number;
  testAccuracy: number;
}

function grads(m: Module): Float32Array[] {
  return m.parameters().map((p) => (p.grad ? (p.grad.values() as Float32Array) : new Float32Array(p.size)));
}

function relError(a: Float32Array[], ref: Float32Array[]): number {
  let num = 0, den = 0;
  a.forEach((g, i) => g.forEach((v, j) => {
    const r = ref[i]![j]!;
    num += (v - r) ** 2;
    den += r * r;
  }));
  return Math.sqrt(num / den);
}

function memoryRows(spec: ModelSpec, modes: ActMode[], batch: number, repeat: number): MemoryRow[] {
  const model = spec.build();
  const forward = spec.forward(model);
  // Warm up the JIT on every code path before timing.
  for (const mode of ['off', 'int4', 'division'] as const) {
    measureStep(forward, 2, new Compression({ mode, model }));
    model.zeroGrad();
  }
  const order = ['off' as const, ...modes.filter((m) => m !== 'off')];
  const rows: MemoryRow[] = [];
  const recording = recordSaves(forward);
  let ref: { grads: Float32Array[]; saved: number; ms: number } | null = null;
  for (const mode of order) {
    model.zeroGrad();
    const predicted = planSavedBytes(recording, batch, { mode, model }).savedBytes;
    const step = measureStep(forward, batch, new Compression({ mode, model, seed: 1 }));
    const g = grads(model);
    model.zeroGrad();
    // The fastest of `repeat` steps (other load on a shared machine only ever adds time).
    for (let r = 1; r < repeat; r++) {
      step.stepMs = Math.min(step.stepMs, measureStep(forward, batch, new Compression({ mode, model, seed: 1 })).stepMs);
      model.zeroGrad();
    }
    if (!ref) ref = { grads: g, saved: step.savedBytes, ms: step.stepMs };
    if (!modes.includes(mode)) continue;
    rows.push({
      model: spec.name, mode, batch, savedBytes: step.savedBytes, predictedSavedBytes: predicted,
      ratio: ref.saved / step.savedBytes, stepMs: step.stepMs, overhead: step.stepMs / ref.ms - 1, gradRelError: relError(g, ref.grads),
    });
  }
  model.dispose();
  return rows;
}

/** Issue 12's modes (GACT auto precision, Mesa, COMET), run by `extraMemoryRows`. */
const EXTRA_MODES = ['auto:2', 'auto:4', 'mesa', 'comet'];
const isExtra = (spec: string) => ['auto', 'mesa', 'comet'].includes(spec.split(':')[0]!);

export interface ExtraMemoryRow extends Omit<MemoryRow, 'mode' | 'predictedSavedBytes'> {
  mode: string;
  /** Bits per saved element, all saves (32 / ratio); for auto:B also the allocation's mean over the saves it controls. */
  meanBits: number;
  allocatedBits: number | null;
}

/**
 * Memory rows of the extra modes against an fp32 step of the same batch. auto:B runs one
 * estimation step first (its allocation is then in force); that step's extra time, spread over
 * the re-estimation interval, is added to the reported step time.
 */
function extraMemoryRows(spec: ModelSpec, specs: string[], batch: number, repeat: number): ExtraMemoryRow[] {
  const model = spec.build();
  const forward = spec.forward(model);
  const fastest = (session: () => Compression) => {
    let best: ReturnType<typeof measureStep> | null = null;
    let g: Float32Array[] = [];
    for (let r = 0; r < Math.max(1, repeat); r++) {
      const step = measureStep(forward, batch, session());
      if (r === 0) g = grads(model);
      model.zeroGrad();
      if (!best || step.stepMs < best.stepMs) best = step;
    }
    return { step: best!, grads: g };
  };
  measureStep(forward, 2, new Compression({ mode: 'int4', model })); // JIT warm-up
  model.zeroGrad();
  const ref = fastest(() => new Compression({ mode: 'off', model }));
  const rows = specs.map((modeSpec) => {
    const config = { ...parseActSpec(modeSpec, 'bench act --modes'), model, seed: 1 };
    let session: Compression | null = null;
    let amortizedMs = 0;
    if (config.mode === 'auto') {
      const interval = 100;
      const estimator = new Compression({ ...config, autoInterval: interval });
      const estimate = measureStep(forward, batch, estimator);
      model.zeroGrad();
      const plain = measureStep(forward, batch, estimator);
      model.zeroGrad();
      amortizedMs = Math.max(0, estimate.stepMs - plain.stepMs) / interval;
      session = estimator;
    }
    const auto = session;
    const measured = fastest(() => {
      if (!auto) return new Compression(config);
      auto.step = 1; // same rounding noise each repeat, allocation kept
      return auto;
    });
    const stepMs = measured.step.stepMs + amortizedMs;
    const ratio = ref.step.savedBytes / measured.step.savedBytes;
    return {
      model: spec.name, mode: modeSpec, batch, savedBytes: measured.step.savedBytes, ratio, stepMs, overhead: stepMs / ref.step.stepMs - 1,
      gradRelError: relError(measured.grads, ref.grads), meanBits: 32 / ratio, allocatedBits: session?.allocation()?.meanBits ?? null,
    };
  });
  model.dispose();
  return rows;
}

function maxBatchRows(modes: ActMode[], capBytes: number, fitBatches: [number, number]): MaxBatchRow[] {
  const spec = MODELS.find((m) => m.name === 'resnet20')!;
  const model = spec.build();
  const forward = spec.forward(model);
  const paramBytes = model.parameters().reduce((a, p) => a + p.byteLength, 0);
  const rows = modes.map((mode) => {
    const probe = (b: number) => {
      model.zeroGrad();
      const peak = paramBytes + measureStep(forward, b, new Compression({ mode, model })).stepPeakBytes;
      model.zeroGrad();
      return peak;
    };
    const fitted = fitPeakModel(probe, fitBatches[0], fitBatches[1]);
    return { model: spec.name, mode, capBytes, maxBatch: findMaxBatch(fitted.probe, capBytes), perSampleBytes: fitted.perSample, fixedBytes: fitted.fixed };
  });
  model.dispose();
  return rows;
}

/**
 * Tensor-level quantize+pack (`packTensor`: min/max pass, metadata, codes) and unpack throughput,
 * GB/s of float32, on the reference backend (TypeScript quantizer) and the wasm backend (wasm
 * quantize kernel; metadata and unpack stay in TypeScript).
 */
function kernelRows(backends: string[]): { backend: string; bits: number; packGBps: number; unpackGBps: number }[] {
  const n = 1 << 22;
  const r = new Rng(3);
  const x = fromValues(Float32Array.from({ length: n }, () => r.normal()), [64, n / 64]);
  const rows = [];
  const previous = getBackend();
  for (const backend of backends) {
    setBackend(backend);
    for (const bits of [2, 4, 8] as const) {
      let pack = Infinity, unpack = Infinity;
      for (let rep = 0; rep < 5; rep++) {
        let t0 = performance.now();
        const p = packTensor(x, { kind: 'quant', bits, groupSize: 256 }, { seed: 1, stream: 0, step: rep });
        pack = Math.min(pack, performance.now() - t0);
        t0 = performance.now();
        const y = unpackTensor(p);
        unpack = Math.min(unpack, performance.now() - t0);
        y.dispose();
        releasePacked(p);
      }
      rows.push({ backend, bits, packGBps: (4 * n) / pack / 1e6, unpackGBps: (4 * n) / unpack / 1e6 });
    }
  }
  setBackend(previous);
  x.dispose();
  return rows;
}

const ACCURACY_MODELS: Record<string, (seed: number) => Module> = {
  mlp: (seed) => mlp([784, 512, 512, 10], seed),
  lenet: (seed) => lenet5(10, seed),
};

async function accuracyRows(models: string[], modes: string[], epochs: number, seeds: number, dataDir: string): Promise<AccuracyRow[]> {
  const [train, test] = await Promise.all([loadMnist(dataDir, { split: 'train' }), loadMnist(dataDir, { split: 'test' })]);
  const rows: AccuracyRow[] = [];
  for (const name of models) for (const mode of modes) {
    for (let seed = 1; seed <= seeds; seed++) {
      const model = ACCURACY_MODELS[name]!(seed);
      const act = new Compression({ ...parseActSpec(mode, 'bench act --modes'), model, seed });
      // Cosine decay to 0: the final weights, not a noisy last iterate, are compared.
      const report = fit(model, train, test, {
        epochs, batchSize: 64, seed, optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
        schedule: cosineLr(0.05, epochs * Math.ceil(train.length / 64)),
        wrapForward: (fn) => act.run(fn),
      });
      rows.push({ model: name, mode, seed, epochs, testAccuracy: report.testAccuracy ?? NaN });
      model.dispose();
    }
  }
  return rows;
}

function list<T extends string>(value: string | undefined, all: readonly T[], what: string, parse: (s: string) => T = (s) => s as T): T[] {
  if (!value) return [...all];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean).map(parse);
  for (const i of items) if (!all.includes(i)) throw new UsageError(`bench act: unknown ${what} '${i}' (available: ${all.join(', ')})`);
  return items;
}

function positive(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`bench act: ${what} must be a positive number, got '${value}'`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        models: { type: 'string' },
        modes: { type: 'string' },
        'cap-mib': { type: 'string' },
        'fit-batches': { type: 'string' },
        'no-max-batch': { type: 'boolean', default: false },
        repeat: { type: 'string' },
        accuracy: { type: 'boolean', default: false },
        'accuracy-models': { type: 'string', default: 'mlp' },
        epochs: { type: 'string' },
        seeds: { type: 'string' },
        data: { type: 'string', default: '../shared/data/mnist-t10k' },
      },
    }));
  } catch (e) {
    throw new UsageError(`bench act: ${(e as Error).message}`);
  }
  const modelNames = list(values.models, MODELS.map((m) => m.name), 'model');
  const requested = values.modes ? values.modes.split(',').map((s) => s.trim()).filter(Boolean) : [...ACT_MODES.filter((m) => !isExtra(m)), ...EXTRA_MODES];
  const usage = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  const modes = requested.filter((m) => !isExtra(m)).map((m) => usage(() => parseMode(m, 'bench act --modes')));
  const extraModes = requested.filter(isExtra);
  for (const m of extraModes) usage(() => parseActSpec(m, 'bench act --modes'));
  const capBytes = positive(values['cap-mib'], 512, '--cap-mib') * MiB;
  const fitBatches = (values['fit-batches'] ?? (values.quick ? '8,16' : '16,32')).split(',').map(Number);
  if (fitBatches.length !== 2 || !fitBatches.every((b) => Number.isInteger(b) && b > 0) || fitBatches[0]! >= fitBatches[1]!) {
    throw new UsageError(`bench act: --fit-batches needs two increasing positive integers, got '${values['fit-batches']}'`);
  }
  const backend = useFastestBackend();

  const memory: MemoryRow[] = [];
  for (const spec of MODELS.filter((m) => modelNames.includes(m.name))) {
    memory.push(...memoryRows(spec, modes, values.quick ? spec.quickBatch : spec.batch, Math.round(positive(values.repeat, values.quick ? 3 : 1, '--repeat'))));
  }
  printTable(memory.map((r) => ({ ...r, savedMiB: r.savedBytes / MiB, predictedMiB: r.predictedSavedBytes / MiB })),
    ['model', 'mode', 'batch', 'savedMiB', 'predictedMiB', 'ratio', 'stepMs', 'overhead', 'gradRelError']);
  const extraMemory: ExtraMemoryRow[] = [];
  for (const spec of MODELS.filter((m) => modelNames.includes(m.name) && extraModes.length)) {
    extraMemory.push(...extraMemoryRows(spec, extraModes, values.quick ? spec.quickBatch : spec.batch, Math.round(positive(values.repeat, values.quick ? 3 : 1, '--repeat'))));
  }
  if (extraMemory.length) {
    console.log('');
    printTable(extraMemory.map((r) => ({ ...r, savedMiB: r.savedBytes / MiB })), ['model', 'mode', 'batch', 'savedMiB', 'ratio', 'meanBits', 'allocatedBits', 'stepMs', 'overhead', 'gradRelError']);
  }

  const maxBatch = values['no-max-batch'] ? [] : maxBatchRows(modes, capBytes, fitBatches as [number, number]);
  if (maxBatch.length) {
    console.log('');
    printTable(maxBatch.map((r) => ({ ...r, capMiB: r.capBytes / MiB, perSampleKiB: r.perSampleBytes / 1024, fixedMiB: r.fixedBytes / MiB })), ['model', 'mode', 'capMiB', 'maxBatch', 'perSampleKiB', 'fixedMiB']);
  }

  const kernels = kernelRows(backend === 'wasm' ? ['reference', 'wasm'] : ['reference']);
  console.log('');
  printTable(kernels);

  let accuracy: AccuracyRow[] = [];
  if (values.accuracy) {
    const accModes = [...modes.filter((m) => m === 'off' || m === 'int4' || m === 'int2' || m === 'division'), ...extraModes];
    const accModels = list(values['accuracy-models'], Object.keys(ACCURACY_MODELS), 'accuracy model');
    accuracy = await accuracyRows(accModels, accModes, positive(values.epochs, 1, '--epochs'), positive(values.seeds, 1, '--seeds'), values.data!);
    console.log('');
    printTable(accuracy.map((r) => ({ ...r })));
  }

  const row = (model: string, mode: string) => memory.find((r) => r.model === model && r.mode === mode) ?? extraMemory.find((r) => r.model === model && r.mode === mode);
  const maxOf = (mode: ActMode) => maxBatch.find((r) => r.mode === mode)?.maxBatch;
  const check = (name: string, value: number | undefined, holds: (v: number) => boolean) => ({ target: name, value: value ?? null, holds: value === undefined ? null : holds(value) });
  const fp32Resnet = row('resnet20', 'off');
  const targets = [
    check('resnet20 fp32 saved MiB ~185 (batch 128)', fp32Resnet && fp32Resnet.batch === 128 ? fp32Resnet.savedBytes / MiB : undefined, (v) => Math.abs(v / 185.5 - 1) < 0.05),
    check('resnet20 int4 ratio >= 7', row('resnet20', 'int4')?.ratio, (v) => v >= 7),
    check('resnet20 int2 ratio >= 11', row('resnet20', 'int2')?.ratio, (v) => v >= 11),
    check('resnet20 division ratio >= 10', row('resnet20', 'division')?.ratio, (v) => v >= 10),
    check('transformer int8 ratio >= 3.9', row('transformer', 'int8')?.ratio, (v) => v >= 3.9),
    check('transformer int4 ratio >= 7', row('transformer', 'int4')?.ratio, (v) => v >= 7),
    check('transformer int2 ratio >= 13', row('transformer', 'int2')?.ratio, (v) => v >= 13),
    check('resnet20 max batch int2 / fp32 >= 5', maxOf('int2') !== undefined && maxOf('off') ? maxOf('int2')! / maxOf('off')! : undefined, (v) => v >= 5),
    check('resnet20 max batch int4 / fp32 >= 3.5', maxOf('int4') !== undefined && maxOf('off') ? maxOf('int4')! / maxOf('off')! : undefined, (v) => v >= 3.5),
    check('resnet20 int4 step overhead <= 15 %', row('resnet20', 'int4')?.overhead, (v) => v <= 0.15),
    check('resnet20 auto:2 ratio >= 11', row('resnet20', 'auto:2')?.ratio, (v) => v >= 11),
    check('resnet20 auto:2 grad error <= 0.7x int2', row('resnet20', 'auto:2') && row('resnet20', 'int2') ? row('resnet20', 'auto:2')!.gradRelError / row('resnet20', 'int2')!.gradRelError : undefined, (v) => v <= 0.7),
    check('resnet20 comet ratio >= 12', row('resnet20', 'comet')?.ratio, (v) => v >= 12),
    check('resnet20 comet step overhead <= 30 %', row('resnet20', 'comet')?.overhead, (v) => v <= 0.3),
    check('planner within 2 % of the ledger (all rows)', memory.length ? Math.max(...memory.map((r) => Math.abs(r.predictedSavedBytes / r.savedBytes - 1))) : undefined, (v) => v <= 0.02),
    check(`quantize+pack >= 1 GB/s (4-bit, ${backend})`, kernels.find((k) => k.bits === 4 && k.backend === backend)!.packGBps, (v) => v >= 1),
  ];
  console.log('');
  printTable(targets.map((t) => ({ ...t, holds: t.holds === null ? 'not run' : t.holds ? 'yes' : 'NO' })));
  if (values.json) printJson({ suite: 'act', backend, quick: values.quick, memory: [...memory, ...extraMemory], maxBatch, kernels, accuracy, targets });
  return 0;
}
