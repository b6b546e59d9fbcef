/**
 * `slimgrad bench act [--json]`: activation-compressed training.
 *
 * - memory: per model and mode: saved-for-backward bytes of one real training step from the
 *   ledger, the planner's prediction, ratio against fp32, the relative L2 error of all parameter
 *   gradients against the fp32 step (same weights, same batch); step time and overhead against
 *   fp32 from a loop (one model, SGD optimizer and compression session per mode, `--steps` steps
 *   per mode per round, modes interleaved, `--rounds` rounds after a warm-up, median step); and
 *   memory as a user sees it, from a child process per mode running `--child-steps` steps alone:
 *   the ledger's peak total, the arena's high-water, the process's peak RSS and its RSS before
 *   the first step (training memory = peakRssBytes - baseRssBytes).
 *   Models: mlp 784-512-512-10, lenet (1x28x28), resnet20 (3x32x32, batch 128), transformer
 *   (d=256, 4 heads, 128 tokens, 4 layers).
 * - maxBatch: ResNet-20's largest batch per mode whose two real training steps complete in a
 *   child process with the arena capped at `--memory-limit` (default 256MiB); the affine fit of
 *   two in-process steps (`--fit-batches`) is only the first guess.
 * - kernels: quantize+pack and unpack throughput (GB/s of fp32) at 2, 4 and 8 bits and of the COMET
 *   codec (comet, 0.05 x the range), TypeScript and wasm kernels, on 4 M random-normal values.
 * - cometCodec (wasm, comet among the modes, resnet20 among the models): the COMET codec on every
 *   float32 save of one ResNet-20 forward, CPU ns per value at 1 thread and the pool's
 *   (bench/act-comet.ts).
 * - accuracy (`--accuracy`): MLP (and/or LeNet-5, ResNet-20 on 1x28x28, `--accuracy-models`) on MNIST
 *   (../shared/data/mnist-t10k: first 8,000 train, last 2,000 test) for fp32/int4/int2/division
 *   and the extra modes requested (auto:B, mesa, comet), SGD lr 0.05 (cosine decay) momentum 0.9, batch 64, `--epochs` (1), `--seeds` (1).
 *
 * - memory rows of issue 12's modes (auto:2, auto:4, mesa, comet; `comet:EB`, `auto:B` on request)
 *   with `meanBits` (32 / ratio) and, for auto:B, the allocation's mean bits.
 *
 * Options: --json, --quick (small batches), --models mlp,lenet,resnet20,transformer,
 * --modes off,fp16,int8,int4,int2,division,auto:2,auto:4,mesa,comet, --steps N (5; quick 2), --rounds N (3; quick 2),
 * --child-steps N (3), --memory-limit 256MiB, --fit-batches 16,32, --no-max-batch, --accuracy,
 * --accuracy-models mlp,lenet,resnet20, --accuracy-jobs N (1: in process; N: child processes N at
 * a time, one kernel thread each), --epochs N, --seeds N, --data DIR.
 * - lm (`--lm`, or `--lm-only` for that table alone): the Tiny Shakespeare char LM per mode
 *   (bench/act-lm.ts): --lm-modes off,int8,mesa,auto:4,auto:2,int4,int2, --lm-steps N (900),
 *   --lm-seeds N (1), --lm-batch N (16), --lm-tokens N (64), --lm-dim N (128), --lm-heads N (4),
 *   --lm-layers N (4), --lm-lr X (0.004), --lm-val N (512 windows), --lm-jobs N (1: in process;
 *   N: child processes N at a time), --lm-data FILE.
 * - lamb (`--lamb`, or `--lamb-only`): LeNet-5, LAMB at batch 1024 with int2 against Adam at
 *   batch 64 (bench/act-lamb.ts): --lamb-seeds N (3), --lamb-epochs N (5), --lamb-lr X (0.08), --lamb-beta2 X (0.95).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backward } from '../src/autograd/backward.js';
import { arena, ArenaLimitError, parseByteSize, setMemoryLimit } from '../src/core/arena.js';
import { memory as ledgerMemory, resetPeakMemory } from '../src/core/ledger.js';
import { scope } from '../src/core/scope.js';
import { StepPlan } from '../src/core/plan.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { getThreads, setThreads, useFastestBackend } from '../src/backends/index.js';
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
import { DEFAULT_AUTO_CALIBRATE, DEFAULT_AUTO_INTERVAL } from '../src/compress/auto.js';
import { ACT_MODES, parseActSpec, parseMode, type ActMode } from '../src/compress/policy.js';
import { findMaxBatch, fitPeakModel, measureStep, planSavedBytes, recordSaves, type ForwardFn } from '../src/compress/planner.js';
import { packTensor, releasePacked, unpackTensor, type Encoding } from '../src/compress/codecs.js';
import { getBackend, setBackend } from '../src/backends/index.js';
import { LM_DEFAULTS, LM_FLAGS, lmChild, lmOptionsFrom, lmRows, lmTargets, type LmRow } from './act-lm.js';
import { sensitivityRows } from './act-sensitivity.js';
import { LAMB_DEFAULTS, lambRows, lambTargets, type LambMemoryRow, type LambRow } from './act-lamb.js';
import { inBenchChild, mapConcurrent } from './children.js';
import { cometCodecRows } from './act-comet.js';

const MiB = 2 ** 20;

interface ModelSpec {
  name: string;
  build: () => Module;
  /** forward(batch) for a model instance. */
  forward: (m: Module) => ForwardFn;
  batch: number;
  quickBatch: number;
}

/**
 * The same random batch every step, generated once per batch size: the harness should not add
 * per-step JS garbage of its own to the process memory it measures (a data loader hands out
 * ready typed arrays too).
 */
function cachedBatch(gen: (batch: number) => { x: Float32Array | Int32Array; y: Int32Array }): (batch: number) => { x: Float32Array | Int32Array; y: Int32Array } {
  const cache = new Map<number, { x: Float32Array | Int32Array; y: Int32Array }>();
  return (batch) => cache.get(batch) ?? cache.set(batch, gen(batch)).get(batch)!;
}

function images(m: Module, shape: number[]): ForwardFn {
  const data = cachedBatch((batch) => {
    const r = new Rng(7, batch);
    const n = batch * shape.reduce((a, b) => a * b, 1);
    return { x: Float32Array.from({ length: n }, () => r.normal()), y: Int32Array.from({ length: batch }, () => r.int(10)) };
  });
  return (batch) => {
    const { x, y } = data(batch);
    return crossEntropy(m.call(fromValues(x, [batch, ...shape])), fromValues(y, [batch], 'int32'));
  };
}

function tokens(m: Module, t: number, vocab: number): ForwardFn {
  const data = cachedBatch((batch) => {
    const r = new Rng(7, batch);
    return { x: Int32Array.from({ length: batch * t }, () => r.int(vocab)), y: Int32Array.from({ length: batch }, () => r.int(10)) };
  });
  return (batch) => {
    const { x, y } = data(batch);
    return crossEntropy(m.call(fromValues(x, [batch, t], 'int32')), fromValues(y, [batch], 'int32'));
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
  /** Median step (forward, backward, optimizer step) of the interleaved loop, ms. */
  stepMs: number;
  overhead: number;
  /**
   * Median CPU time of the same steps (all threads of the process; idle workers block, never
   * spin), ms, and its overhead against off: on a shared machine CPU time swings far less than
   * wall time, which waits for the cores.
   */
  cpuStepMs: number;
  cpuOverhead: number;
  gradRelError: number;
  /** From a child process running this model and mode alone (see `childSteps`). */
  peakTotalBytes: number;
  arenaHighWaterBytes: number;
  peakRssBytes: number;
  baseRssBytes: number;
}

export interface MaxBatchRow {
  model: string;
  mode: ActMode;
  limitBytes: number;
  /** The largest batch whose training steps completed in a child process under `--memory-limit`. */
  maxBatch: number;
  /** The smallest batch seen to fail (maxBatch + 1 when the search ran to the end). */
  failedBatch: number;
  measured: true;
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** What a child process reports after `steps` training steps of one model and mode. */
export interface ChildReport {
  ok: boolean;
  error?: string;
  savedBytes: number;
  peakTotalBytes: number;
  arenaHighWaterBytes: number;
  peakRssBytes: number;
  baseRssBytes: number;
  stepMs: number;
}

interface ChildSpec {
  model: string;
  mode: ActMode;
  batch: number;
  steps: number;
  limitBytes?: number;
}

/**
 * The child side: `steps` real training steps (one compression session, SGD with momentum) of
 * one model and mode in a fresh process, under an optional arena limit. Base RSS is taken after
 * import, model build and optimizer setup, before the first step.
 */
function childSteps(spec: ChildSpec): ChildReport {
  if (spec.limitBytes) setMemoryLimit(spec.limitBytes);
  const model = MODELS.find((m) => m.name === spec.model)!.build();
  const forward = MODELS.find((m) => m.name === spec.model)!.forward(model);
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const session = new Compression({ mode: spec.mode, model, seed: 1 });
  const plan = new StepPlan();
  const baseRssBytes = process.memoryUsage.rss();
  resetPeakMemory();
  const times: number[] = [];
  let savedBytes = 0;
  const report = (ok: boolean, error?: string): ChildReport => ({
    ok, error, savedBytes, peakTotalBytes: ledgerMemory().peakTotalBytes, arenaHighWaterBytes: arena().highWaterBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, baseRssBytes, stepMs: times.length ? median(times) : NaN,
  });
  try {
    for (let s = 0; s < spec.steps; s++) {
      const t0 = performance.now();
      plan.run(() => scope(() => {
        const before = ledgerMemory().current.saved;
        const loss = session.run(() => forward(spec.batch));
        savedBytes = ledgerMemory().current.saved - before;
        backward(loss);
        optimizer.step();
        optimizer.zeroGrad();
      }));
      times.push(performance.now() - t0);
    }
  } catch (e) {
    if (e instanceof ArenaLimitError) return report(false, e.message);
    throw e;
  }
  return report(true);
}

/** Runs `childSteps(spec)` in a fresh process of the bench entry (same Node flags: tsx) and parses its report. */
function inChild(spec: ChildSpec): ChildReport {
  const entry = fileURLToPath(new URL('./main.ts', import.meta.url));
  const r = spawnSync(process.execPath, [...process.execArgv, entry, 'act', '--child', JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`bench act: child process for ${spec.model} ${spec.mode} batch ${spec.batch} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(last) as ChildReport;
}

interface LoopTimes {
  /** Median step of all rounds, ms (wall, and CPU of all threads). */
  wall: number;
  cpu: number;
  /**
   * Overhead against the first mode (off): the median over rounds of this mode's median step in
   * the round over off's in the same round, minus 1. Paired by round, so that a slow stretch of a
   * shared VM (minutes long) cancels instead of landing on whichever mode ran then.
   */
  overhead: number;
  cpuOverhead: number;
}

/**
 * Step time the way users train: one model, optimizer and compression session per mode, `steps`
 * steps per mode per round, modes interleaved round by round (load on a shared machine hits all
 * of them alike), the first round a warm-up; see LoopTimes.
 */
function loopStepMs(spec: ModelSpec, modes: string[], batch: number, steps: number, rounds: number): Map<string, LoopTimes> {
  const runs = modes.map((mode) => {
    const model = spec.build();
    return { mode, model, forward: spec.forward(model), optimizer: new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), session: new Compression({ ...parseActSpec(mode), model, seed: 1 }), plan: new StepPlan(), times: [] as number[], cpu: [] as number[] };
  });
  for (let round = 0; round <= rounds; round++) {
    for (const r of runs) {
      for (let s = 0; s < steps; s++) {
        const t0 = performance.now(), c0 = process.cpuUsage();
        r.plan.run(() => scope(() => {
          backward(r.session.run(() => r.forward(batch)));
          r.optimizer.step();
          r.optimizer.zeroGrad();
        }));
        if (round > 0) {
          r.times.push(performance.now() - t0);
          const c = process.cpuUsage(c0);
          r.cpu.push((c.user + c.system) / 1000);
        }
      }
    }
  }
  // Per round: each mode's median step; then the paired ratio to the first mode's, per round.
  const perRound = (xs: number[]) => Array.from({ length: rounds }, (_, i) => median(xs.slice(i * steps, (i + 1) * steps)));
  const paired = (xs: number[], ref: number[]) => {
    const refRounds = perRound(ref);
    return median(perRound(xs).map((v, i) => v / refRounds[i]!)) - 1;
  };
  const base = runs[0]!;
  const out = new Map(runs.map((r) => [r.mode, { wall: median(r.times), cpu: median(r.cpu), overhead: paired(r.times, base.times), cpuOverhead: paired(r.cpu, base.cpu) }]));
  for (const r of runs) {
    r.optimizer.dispose();
    r.model.dispose();
  }
  return out;
}

function memoryRows(spec: ModelSpec, modes: ActMode[], batch: number, o: { steps: number; rounds: number; childSteps: number }): MemoryRow[] {
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
  let ref: { grads: Float32Array[]; saved: number } | null = null;
  const perMode: { mode: ActMode; saved: number; predicted: number; g: Float32Array[] }[] = [];
  for (const mode of order) {
    model.zeroGrad();
    const predicted = planSavedBytes(recording, batch, { mode, model }).savedBytes;
    const step = measureStep(forward, batch, new Compression({ mode, model, seed: 1 }));
    const g = grads(model);
    model.zeroGrad();
    ref ??= { grads: g, saved: step.savedBytes };
    perMode.push({ mode, saved: step.savedBytes, predicted, g });
  }
  model.dispose();
  const stepMs = loopStepMs(spec, order, batch, o.steps, o.rounds);
  for (const { mode, saved, predicted, g } of perMode) {
    if (!modes.includes(mode)) continue;
    const child = inChild({ model: spec.name, mode, batch, steps: o.childSteps });
    rows.push({
      model: spec.name, mode, batch, savedBytes: saved, predictedSavedBytes: predicted, ratio: ref!.saved / saved,
      stepMs: stepMs.get(mode)!.wall, overhead: stepMs.get(mode)!.overhead,
      cpuStepMs: stepMs.get(mode)!.cpu, cpuOverhead: stepMs.get(mode)!.cpuOverhead, gradRelError: relError(g, ref!.grads),
      peakTotalBytes: child.peakTotalBytes, arenaHighWaterBytes: child.arenaHighWaterBytes, peakRssBytes: child.peakRssBytes, baseRssBytes: child.baseRssBytes,
    });
  }
  return rows;
}

/** Issue 12's modes (GACT auto precision, Mesa, COMET), run by `extraMemoryRows`. */
const EXTRA_MODES = ['auto:2', 'auto:4', 'mesa', 'comet'];
const isExtra = (spec: string) => ['auto', 'mesa', 'comet'].includes(spec.split(':')[0]!);

/** In-process rows (ledger bytes, step time, gradient error); the per-process RSS/arena columns are the main table's. */
export interface ExtraMemoryRow extends Omit<MemoryRow, 'mode' | 'predictedSavedBytes' | 'peakRssBytes' | 'arenaHighWaterBytes' | 'baseRssBytes' | 'peakTotalBytes' | 'cpuStepMs' | 'cpuOverhead'> {
  mode: string;
  /**
   * Modes other than auto:B: step times from the interleaved loop of the main table (`--steps`
   * training steps per mode per round, `--rounds` rounds, off first), wall and CPU, overheads
   * paired by round against off; null for auto:B (its stepMs: the fastest of `--rounds` single
   * steps plus the amortized estimation and calibration, overhead against off's fastest).
   */
  cpuStepMs: number | null;
  cpuOverhead: number | null;
  /** Bits per saved element, all saves (32 / ratio); for auto:B also the allocation's mean over the saves it controls. */
  meanBits: number;
  allocatedBits: number | null;
}

/**
 * Memory rows of the extra modes against an fp32 step of the same batch. auto:B runs its
 * calibration step and a plain estimation step first (the allocation is then in force); their
 * extra time, spread over the default schedule (an estimation every 100 steps, every 3rd a
 * calibration), is added to the reported step time.
 */
function extraMemoryRows(spec: ModelSpec, specs: string[], batch: number, loop: { steps: number; rounds: number }): ExtraMemoryRow[] {
  const repeat = loop.rounds;
  const looped = specs.filter((m) => parseActSpec(m).mode !== 'auto');
  const times = looped.length ? loopStepMs(spec, ['off', ...looped], batch, loop.steps, loop.rounds) : new Map<string, LoopTimes>();
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
      // The default schedule (step 0 calibrates).
      const interval = DEFAULT_AUTO_INTERVAL, every = DEFAULT_AUTO_CALIBRATE;
      const estimator = new Compression({ ...config, autoInterval: interval, autoCalibrate: every });
      const calibration = measureStep(forward, batch, estimator);
      model.zeroGrad();
      const plain = measureStep(forward, batch, estimator);
      model.zeroGrad();
      estimator.step = interval; // an estimation step that does not calibrate
      const estimate = measureStep(forward, batch, estimator);
      model.zeroGrad();
      const extra = (m: { stepMs: number }) => Math.max(0, m.stepMs - plain.stepMs);
      amortizedMs = (extra(calibration) + (every - 1) * extra(estimate)) / (interval * every);
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
    const t = times.get(modeSpec);
    return {
      model: spec.name, mode: modeSpec, batch, savedBytes: measured.step.savedBytes, ratio,
      stepMs: t ? t.wall : stepMs, overhead: t ? t.overhead : stepMs / ref.step.stepMs - 1, cpuStepMs: t?.cpu ?? null, cpuOverhead: t?.cpuOverhead ?? null,
      gradRelError: relError(measured.grads, ref.grads), meanBits: 32 / ratio, allocatedBits: session?.allocation()?.meanBits ?? null,
    };
  });
  model.dispose();
  return rows;
}

/**
 * ResNet-20's largest batch per mode whose two real training steps complete in a child process
 * whose arena is capped at `limitBytes`. The affine fit of two in-process steps gives the first
 * guess; probes then bracket the answer (x1.25 steps) and bisect it to within 3%.
 */
function maxBatchRows(modes: ActMode[], limitBytes: number, fitBatches: [number, number]): MaxBatchRow[] {
  const spec = MODELS.find((m) => m.name === 'resnet20')!;
  const model = spec.build();
  const forward = spec.forward(model);
  const paramBytes = model.parameters().reduce((a, p) => a + p.byteLength, 0);
  const guesses = modes.map((mode) => {
    const probe = (b: number) => {
      model.zeroGrad();
      const peak = 3 * paramBytes + measureStep(forward, b, new Compression({ mode, model })).stepPeakBytes;
      model.zeroGrad();
      return peak;
    };
    return Math.max(1, findMaxBatch(fitPeakModel(probe, fitBatches[0], fitBatches[1]).probe, limitBytes));
  });
  model.dispose();
  return modes.map((mode, i) => {
    const fits = (batch: number) => inChild({ model: spec.name, mode, batch, steps: 2, limitBytes }).ok;
    let good = 0, bad = Infinity, b = guesses[i]!;
    while (bad === Infinity || good === 0) {
      if (fits(b)) {
        good = b;
        if (bad !== Infinity) break;
        b = Math.ceil(b * 1.25);
      } else {
        bad = b;
        if (b === 1) break;
        if (good > 0) break;
        b = Math.max(1, Math.floor(b / 1.25));
      }
    }
    while (good > 0 && bad - good > Math.max(1, Math.ceil(good * 0.03))) {
      const mid = (good + bad) >>> 1;
      if (fits(mid)) good = mid;
      else bad = mid;
    }
    return { model: spec.name, mode, limitBytes, maxBatch: good, failedBatch: bad, measured: true as const };
  });
}

/**
 * Tensor-level quantize+pack (`packTensor`: min/max pass, metadata, codes) and unpack throughput,
 * GB/s of float32, on the reference backend (TypeScript quantizer) and the wasm backend (one
 * groupQuantize call for ranges, metadata and codes; the dequantize kernel).
 */
function kernelRows(backends: string[]): { backend: string; codec: string; bits: number | null; packGBps: number; unpackGBps: number }[] {
  const n = 1 << 22;
  const r = new Rng(3);
  const x = fromValues(Float32Array.from({ length: n }, () => r.normal()), [64, n / 64]);
  const rows = [];
  const previous = getBackend();
  const codecs: [string, Encoding][] = [
    ...([2, 4, 8] as const).map((bits): [string, Encoding] => [`int${bits}`, { kind: 'quant', bits, groupSize: 256 }]),
    ['comet', { kind: 'comet', bound: 0.05 }],
  ];
  for (const backend of backends) {
    setBackend(backend);
    for (const [codec, encoding] of codecs) {
      let pack = Infinity, unpack = Infinity;
      for (let rep = 0; rep < 9; rep++) {
        let t0 = performance.now();
        const p = packTensor(x, encoding, { seed: 1, stream: 0, step: rep });
        pack = Math.min(pack, performance.now() - t0);
        t0 = performance.now();
        const y = unpackTensor(p);
        unpack = Math.min(unpack, performance.now() - t0);
        y.dispose();
        releasePacked(p);
      }
      rows.push({ backend, codec, bits: encoding.kind === 'quant' ? encoding.bits : null, packGBps: (4 * n) / pack / 1e6, unpackGBps: (4 * n) / unpack / 1e6 });
    }
  }
  setBackend(previous);
  x.dispose();
  return rows;
}

const ACCURACY_MODELS: Record<string, (seed: number) => Module> = {
  mlp: (seed) => mlp([784, 512, 512, 10], seed),
  lenet: (seed) => lenet5(10, seed),
  resnet20: (seed) => resnet20(10, seed, 1),
};

interface AccuracySpec {
  model: string;
  mode: string;
  seed: number;
  epochs: number;
  dataDir: string;
}

type MnistSplits = [Awaited<ReturnType<typeof loadMnist>>, Awaited<ReturnType<typeof loadMnist>>];
const mnistSplits = (dataDir: string): Promise<MnistSplits> => Promise.all([loadMnist(dataDir, { split: 'train' }), loadMnist(dataDir, { split: 'test' })]);

/** One accuracy run: `spec.epochs` epochs of MNIST training, then the test split. */
async function accuracyRun(spec: AccuracySpec, splits?: MnistSplits): Promise<AccuracyRow> {
  const [train, test] = splits ?? (await mnistSplits(spec.dataDir));
  const { model: name, mode, seed, epochs } = spec;
  const model = ACCURACY_MODELS[name]!(seed);
  const act = new Compression({ ...parseActSpec(mode, 'bench act --modes'), model, seed });
  // Cosine decay to 0: the final weights, not a noisy last iterate, are compared.
  const report = fit(model, train, test, {
    epochs, batchSize: 64, seed, optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
    schedule: cosineLr(0.05, epochs * Math.ceil(train.length / 64)),
    wrapForward: (fn) => act.run(fn),
  });
  model.dispose();
  return { model: name, mode, seed, epochs, testAccuracy: report.testAccuracy ?? NaN };
}

/**
 * Every model, mode and seed 1..seeds. jobs = 1: in this process, one after another; jobs > 1:
 * a child process per run (one kernel thread each), `jobs` at a time. Runs are seeded and
 * thread-count independent, so the rows are the same either way.
 */
async function accuracyRows(models: string[], modes: string[], epochs: number, seeds: number, dataDir: string, jobs: number): Promise<AccuracyRow[]> {
  // Seed-major: a campaign stopped part way has every mode of the seeds it finished.
  const specs = Array.from({ length: seeds }, (_, s) => models.flatMap((model) => modes.map((mode) => ({ model, mode, seed: s + 1, epochs, dataDir })))).flat();
  if (jobs <= 1) {
    const splits = await mnistSplits(dataDir);
    const rows: AccuracyRow[] = [];
    for (const spec of specs) rows.push(await accuracyRun(spec, splits));
    return rows;
  }
  return mapConcurrent(specs, jobs, async (spec) => {
    const row = await inBenchChild<AccuracyRow>(['act', '--accuracy-child', JSON.stringify(spec)], `bench act --accuracy: child for ${spec.model} ${spec.mode} seed ${spec.seed}`);
    // Progress of a long campaign, off stdout (whose last line is the JSON report).
    console.error(`bench act --accuracy: ${row.model} ${row.mode} seed ${row.seed}: ${(100 * row.testAccuracy).toFixed(2)}%`);
    return row;
  });
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
        'memory-limit': { type: 'string', default: '256MiB' },
        steps: { type: 'string' },
        rounds: { type: 'string' },
        'child-steps': { type: 'string' },
        child: { type: 'string' },
        'fit-batches': { type: 'string' },
        'no-max-batch': { type: 'boolean', default: false },
        accuracy: { type: 'boolean', default: false },
        'accuracy-models': { type: 'string', default: 'mlp' },
        'accuracy-jobs': { type: 'string', default: '1' },
        'accuracy-child': { type: 'string' },
        epochs: { type: 'string' },
        seeds: { type: 'string' },
        data: { type: 'string', default: '../shared/data/mnist-t10k' },
        sensitivity: { type: 'boolean', default: false },
        'sensitivity-models': { type: 'string', default: 'resnet20,charlm' },
        'sensitivity-bits': { type: 'string', default: '2' },
        'sensitivity-draws': { type: 'string', default: '3' },
        'sensitivity-pretrain': { type: 'string', default: '0' },
        lamb: { type: 'boolean', default: false },
        'lamb-only': { type: 'boolean', default: false },
        'lamb-lr': { type: 'string' },
        'lamb-beta2': { type: 'string' },
        'lamb-epochs': { type: 'string' },
        'lamb-seeds': { type: 'string' },
        ...LM_FLAGS,
      },
    }));
  } catch (e) {
    throw new UsageError(`bench act: ${(e as Error).message}`);
  }
  if (values.child) {
    // The child side of a memory row or a max-batch probe: one JSON line.
    useFastestBackend();
    printJson(childSteps(JSON.parse(values.child) as ChildSpec));
    return 0;
  }
  if (values['accuracy-child']) {
    useFastestBackend();
    setThreads(1); // children run side by side, one per core
    printJson(await accuracyRun(JSON.parse(values['accuracy-child']) as AccuracySpec));
    return 0;
  }
  if (values['lm-child']) {
    useFastestBackend();
    printJson(lmChild(JSON.parse(values['lm-child'])));
    return 0;
  }
  if (values.sensitivity) {
    useFastestBackend();
    const which = list(values['sensitivity-models'], ['resnet20', 'charlm'], 'sensitivity model');
    const bits = positive(values['sensitivity-bits'], 2, '--sensitivity-bits');
    const pretrain = Number(values['sensitivity-pretrain']);
    if (!Number.isInteger(pretrain) || pretrain < 0) throw new UsageError(`bench act: --sensitivity-pretrain must be a non-negative integer, got '${values['sensitivity-pretrain']}'`);
    if (bits < 1 || bits > 8) throw new UsageError(`bench act: --sensitivity-bits must be in [1, 8], got ${bits}`);
    const r = sensitivityRows(which, bits, Math.round(positive(values['sensitivity-draws'], 3, '--sensitivity-draws')), (values['lm-data'] as string | undefined) ?? LM_DEFAULTS.dataFile, pretrain);
    printTable(r.tensors.map((t) => ({ ...t, ratio: t.measured / t.proxy })), ['model', 'tensor', 'consumers', 'numel', 'proxy', 'measured', 'ratio', 'proxyBits', 'calibratedBits']);
    console.log('');
    printTable(r.errors.map((e) => ({ ...e })));
    if (values.json) printJson({ suite: 'act', sensitivity: r });
    return 0;
  }
  if (values['lamb-only']) {
    const lamb = await lambSection(values);
    if (values.json) printJson({ suite: 'act', backend: getBackend(), lamb: lamb.runs, lambMemory: lamb.memory, targets: lamb.targets });
    return 0;
  }
  if (values['lm-only']) {
    useFastestBackend();
    const lm = await lmSection(values);
    console.log('');
    printTable(lm.targets.map((t) => ({ ...t, holds: t.holds === null ? 'not run' : t.holds ? 'yes' : 'NO' })));
    if (values.json) printJson({ suite: 'act', backend: getBackend(), lm: lm.rows, targets: lm.targets });
    return 0;
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
  let limitBytes: number;
  try {
    limitBytes = parseByteSize(values['memory-limit']!, 'bench act --memory-limit');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const count = (v: string | undefined, fallback: number, what: string) => Math.round(positive(v, fallback, what));
  const loop = { steps: count(values.steps, values.quick ? 2 : 5, '--steps'), rounds: count(values.rounds, values.quick ? 2 : 3, '--rounds'), childSteps: count(values['child-steps'], 3, '--child-steps') };
  const fitBatches = (values['fit-batches'] ?? (values.quick ? '8,16' : '16,32')).split(',').map(Number);
  if (fitBatches.length !== 2 || !fitBatches.every((b) => Number.isInteger(b) && b > 0) || fitBatches[0]! >= fitBatches[1]!) {
    throw new UsageError(`bench act: --fit-batches needs two increasing positive integers, got '${values['fit-batches']}'`);
  }
  // Checked before any table runs: a typo must not wait for the memory section.
  const accuracyPlan = values.accuracy ? {
    models: list(values['accuracy-models'], Object.keys(ACCURACY_MODELS), 'accuracy model'),
    epochs: positive(values.epochs, 1, '--epochs'), seeds: positive(values.seeds, 1, '--seeds'), jobs: count(values['accuracy-jobs'], 1, '--accuracy-jobs'),
  } : null;
  const backend = useFastestBackend();

  const memory: MemoryRow[] = [];
  for (const spec of MODELS.filter((m) => modelNames.includes(m.name))) {
    memory.push(...memoryRows(spec, modes, values.quick ? spec.quickBatch : spec.batch, loop));
  }
  printTable(memory.map((r) => ({
    ...r, savedMiB: r.savedBytes / MiB, predictedMiB: r.predictedSavedBytes / MiB, peakTotalMiB: r.peakTotalBytes / MiB,
    arenaMiB: r.arenaHighWaterBytes / MiB, rssMiB: r.peakRssBytes / MiB, trainRssMiB: (r.peakRssBytes - r.baseRssBytes) / MiB,
  })), ['model', 'mode', 'batch', 'savedMiB', 'predictedMiB', 'ratio', 'peakTotalMiB', 'arenaMiB', 'rssMiB', 'trainRssMiB', 'stepMs', 'overhead', 'cpuStepMs', 'cpuOverhead', 'gradRelError']);
  const extraMemory: ExtraMemoryRow[] = [];
  for (const spec of MODELS.filter((m) => modelNames.includes(m.name) && extraModes.length)) {
    extraMemory.push(...extraMemoryRows(spec, extraModes, values.quick ? spec.quickBatch : spec.batch, loop));
  }
  if (extraMemory.length) {
    console.log('');
    printTable(extraMemory.map((r) => ({ ...r, savedMiB: r.savedBytes / MiB })), ['model', 'mode', 'batch', 'savedMiB', 'ratio', 'meanBits', 'allocatedBits', 'stepMs', 'overhead', 'cpuStepMs', 'cpuOverhead', 'gradRelError']);
  }

  const maxBatch = values['no-max-batch'] ? [] : maxBatchRows(modes, limitBytes, fitBatches as [number, number]);
  if (maxBatch.length) {
    console.log('');
    printTable(maxBatch.map((r) => ({ ...r, limitMiB: r.limitBytes / MiB })), ['model', 'mode', 'limitMiB', 'maxBatch', 'failedBatch', 'measured']);
  }

  const kernels = kernelRows(backend === 'wasm' ? ['reference', 'wasm'] : ['reference']);
  console.log('');
  printTable(kernels);
  // The COMET codec on ResNet-20's own saves (bench/act-comet.ts), with comet among the modes.
  let cometCodec: ReturnType<typeof cometCodecRows> = [];
  if (backend === 'wasm' && modelNames.includes('resnet20') && extraModes.some((m) => m.startsWith('comet'))) {
    const resnet = MODELS.find((m) => m.name === 'resnet20')!, model = resnet.build();
    cometCodec = cometCodecRows(resnet.forward(model), values.quick ? resnet.quickBatch : resnet.batch, [1, getThreads()]);
    model.dispose();
  }
  if (cometCodec.length) {
    console.log('');
    printTable(cometCodec.map((r) => ({ ...r })));
  }

  let accuracy: AccuracyRow[] = [];
  if (accuracyPlan) {
    const accModes = [...modes.filter((m) => m === 'off' || m === 'int4' || m === 'int2' || m === 'division'), ...extraModes];
    const { models: accModels, epochs, seeds, jobs } = accuracyPlan;
    accuracy = await accuracyRows(accModels, accModes, epochs, seeds, values.data!, jobs);
    console.log('');
    printTable(accuracy.map((r) => ({ ...r })));
  }

  const lm = values.lm ? await lmSection(values) : { rows: [], targets: [] };
  const lamb = values.lamb ? await lambSection(values) : { runs: [], memory: [], targets: [] };

  const row = (model: string, mode: string) => memory.find((r) => r.model === model && r.mode === mode) ?? extraMemory.find((r) => r.model === model && r.mode === mode);
  const maxOf = (mode: ActMode) => maxBatch.find((r) => r.mode === mode)?.maxBatch;
  const check = (name: string, value: number | undefined, holds: (v: number) => boolean) => ({ target: name, value: value ?? null, holds: value === undefined ? null : holds(value) });
  const fp32Resnet = row('resnet20', 'off');
  const trainRss = (mode: ActMode) => {
    const r = memory.find((m) => m.model === 'resnet20' && m.mode === mode);
    return r ? r.peakRssBytes - r.baseRssBytes : undefined;
  };
  const targets = [
    check('resnet20 fp32 saved MiB ~185 (batch 128)', fp32Resnet && fp32Resnet.batch === 128 ? fp32Resnet.savedBytes / MiB : undefined, (v) => Math.abs(v / 185.5 - 1) < 0.05),
    check('resnet20 int4 ratio >= 7', row('resnet20', 'int4')?.ratio, (v) => v >= 7),
    check('resnet20 int2 ratio >= 11', row('resnet20', 'int2')?.ratio, (v) => v >= 11),
    check('resnet20 division ratio >= 10', row('resnet20', 'division')?.ratio, (v) => v >= 10),
    check('transformer int8 ratio >= 3.9', row('transformer', 'int8')?.ratio, (v) => v >= 3.9),
    check('transformer int4 ratio >= 7', row('transformer', 'int4')?.ratio, (v) => v >= 7),
    check('transformer int2 ratio >= 13', row('transformer', 'int2')?.ratio, (v) => v >= 13),
    check(`resnet20 max batch int2 / fp32 >= 4 (real steps, ${limitBytes / MiB} MiB)`, maxOf('int2') !== undefined && maxOf('off') ? maxOf('int2')! / maxOf('off')! : undefined, (v) => v >= 4),
    check(`resnet20 max batch int4 / fp32 >= 3 (real steps, ${limitBytes / MiB} MiB)`, maxOf('int4') !== undefined && maxOf('off') ? maxOf('int4')! / maxOf('off')! : undefined, (v) => v >= 3),
    check('resnet20 int4 step overhead <= 15 % (loop)', row('resnet20', 'int4')?.overhead, (v) => v <= 0.15),
    check('resnet20 int2 step overhead <= 15 % (loop)', row('resnet20', 'int2')?.overhead, (v) => v <= 0.15),
    check('resnet20 int4 step overhead <= 15 % (loop, CPU time)', (row('resnet20', 'int4') as MemoryRow | undefined)?.cpuOverhead, (v) => v <= 0.15),
    check('resnet20 int2 step overhead <= 15 % (loop, CPU time)', (row('resnet20', 'int2') as MemoryRow | undefined)?.cpuOverhead, (v) => v <= 0.15),
    check('arena high-water <= 1.15x ledger peak total (all rows)', memory.length ? Math.max(...memory.map((r) => r.arenaHighWaterBytes / r.peakTotalBytes)) : undefined, (v) => v <= 1.15),
    check('resnet20 training RSS off / int2 >= 3.5', trainRss('off') && trainRss('int2') ? trainRss('off')! / trainRss('int2')! : undefined, (v) => v >= 3.5),
    check('resnet20 training RSS off / int4 >= 3', trainRss('off') && trainRss('int4') ? trainRss('off')! / trainRss('int4')! : undefined, (v) => v >= 3),
    check('resnet20 auto:2 ratio >= 11', row('resnet20', 'auto:2')?.ratio, (v) => v >= 11),
    check('resnet20 auto:2 grad error <= 0.7x int2', row('resnet20', 'auto:2') && row('resnet20', 'int2') ? row('resnet20', 'auto:2')!.gradRelError / row('resnet20', 'int2')!.gradRelError : undefined, (v) => v <= 0.7),
    check('resnet20 comet ratio >= 12', row('resnet20', 'comet')?.ratio, (v) => v >= 12),
    check('resnet20 comet step overhead <= 30 % (loop)', row('resnet20', 'comet')?.overhead, (v) => v <= 0.3),
    check('resnet20 comet step overhead <= 30 % (loop, CPU time)', row('resnet20', 'comet')?.cpuOverhead ?? undefined, (v) => v <= 0.3),
    check('planner within 2 % of the ledger (all rows)', memory.length ? Math.max(...memory.map((r) => Math.abs(r.predictedSavedBytes / r.savedBytes - 1))) : undefined, (v) => v <= 0.02),
    check(`quantize+pack >= 1 GB/s (4-bit, ${backend})`, kernels.find((k) => k.bits === 4 && k.backend === backend)!.packGBps, (v) => v >= 1),
    ...lm.targets,
    ...lamb.targets,
  ];
  console.log('');
  printTable(targets.map((t) => ({ ...t, holds: t.holds === null ? 'not run' : t.holds ? 'yes' : 'NO' })));
  if (values.json) printJson({ suite: 'act', backend, quick: values.quick, memory: [...memory, ...extraMemory], maxBatch, kernels, cometCodec, accuracy, lm: lm.rows, lamb: lamb.runs, lambMemory: lamb.memory, targets });
  return 0;
}

/** --lamb-beta2: a decay in [0, 1). */
function beta2(v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n < 1)) throw new UsageError(`bench act: --lamb-beta2 must be a number in [0, 1), got '${v}'`);
  return n;
}

/** The LAMB campaign's tables (printed) and targets (`--lamb`, `--lamb-only`). */
async function lambSection(values: { 'lamb-lr'?: string; 'lamb-beta2'?: string; 'lamb-epochs'?: string; 'lamb-seeds'?: string; data?: string }): Promise<{ runs: LambRow[]; memory: LambMemoryRow[]; targets: ReturnType<typeof lambTargets> }> {
  const whole = (v: string | undefined, fallback: number, what: string) => {
    const n = positive(v, fallback, what);
    if (!Number.isInteger(n)) throw new UsageError(`bench act: ${what} must be a positive integer, got '${v}'`);
    return n;
  };
  const { runs, memory } = await lambRows({
    seeds: whole(values['lamb-seeds'], LAMB_DEFAULTS.seeds, '--lamb-seeds'),
    epochs: whole(values['lamb-epochs'], LAMB_DEFAULTS.epochs, '--lamb-epochs'),
    lambLr: positive(values['lamb-lr'], LAMB_DEFAULTS.lambLr, '--lamb-lr'),
    lambBeta2: beta2(values['lamb-beta2'], LAMB_DEFAULTS.lambBeta2),
    dataDir: values.data!,
  });
  const targets = lambTargets(runs, memory);
  console.log('');
  printTable(runs.map((r) => ({ ...r })));
  console.log('');
  printTable(memory.map((r) => ({ ...r, savedMiB: r.savedBytes / MiB })), ['model', 'batch', 'mode', 'savedMiB']);
  console.log('');
  printTable(targets.map((t) => ({ ...t, holds: t.holds === null ? 'not run' : t.holds ? 'yes' : 'NO' })));
  return { runs, memory, targets };
}

/** The LM campaign's table (printed) and targets. */
async function lmSection(values: Parameters<typeof lmOptionsFrom>[0]): Promise<{ rows: LmRow[]; targets: ReturnType<typeof lmTargets> }> {
  let parsed;
  try {
    parsed = lmOptionsFrom(values);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const rows = await lmRows(parsed.options, parsed.jobs);
  const targets = lmTargets(rows);
  console.log('');
  printTable(rows.map((r) => ({ ...r, savedMiB: r.savedBytes / MiB })), ['mode', 'seed', 'steps', 'valLoss', 'deltaVsOff', 'savedMiB', 'ratio', 'allocatedBits', 'stepMs']);
  return { rows, targets };
}
