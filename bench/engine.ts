/**
 * `slimgrad bench engine [--json]`: (a) f32 GEMM GFLOP/s of the wasm kernels per size, transpose
 * variant and thread count, with tfjs-wasm and tfjs-cpu matMul and PyTorch CPU torch.mm (NN, same
 * thread counts) for comparison; (b) training throughput (samples/s, peak RSS) of an MLP, a CNN
 * and ResNet-20 on slimgrad, tfjs-cpu, tfjs-wasm and PyTorch CPU (at slimgrad's thread counts),
 * each case in its own process so that peak RSS belongs to that case alone. PyTorch runs when
 * `/usr/bin/python3 -c 'import torch'` works (bench/engine-pytorch.ts); otherwise its rows carry
 * `error: 'PyTorch not installed'`.
 *
 * Options: --json, --part gemm|train|all (default all), --sizes 256,512,1024, --threads N (the
 * multi-thread count; default: the wasm default), --models mlp,cnn,resnet20, --seconds S (time per
 * case), --case-timeout S (kill a training case after S seconds; default 180), --no-tfjs,
 * --no-pytorch.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { Tensor } from '../src/core/tensor.js';
import { kernels } from '../src/backends/index.js';
import type { GemmArgs } from '../src/backends/kernels.js';
import { defaultThreads, setThreads, useFastestBackend, wasmVariant } from '../src/backends/index.js';
import { Rng } from '../src/util/rng.js';
import { TRAIN_MODELS, TRAIN_SPECS, type TrainCase, type TrainRow } from './engine-train.js';
import { NOT_INSTALLED, pytorchAvailable, runPytorchCase, type PytorchLibraries } from './engine-pytorch.js';

export interface GemmRow {
  engine: 'slimgrad' | 'tfjs-wasm' | 'tfjs-cpu' | 'pytorch';
  size: number;
  variant: 'NN' | 'NT' | 'TN' | 'TT';
  threads: number;
  /** null when the engine could not run the case (see error). */
  gflops: number | null;
  error?: string | null;
}

const VARIANTS = { NN: [false, false], NT: [false, true], TN: [true, false], TT: [true, true] } as const;

/**
 * Seconds per call of fn: one warm-up call, then WINDOWS timing windows of at least `ms / WINDOWS`
 * (and 2 calls) each; the fastest window counts, which filters out other load on a shared machine.
 */
export function timeIt(fn: () => void, ms: number): number {
  const WINDOWS = 5;
  fn();
  let best = Infinity;
  for (let w = 0; w < WINDOWS; w++) {
    let reps = 0, elapsed = 0;
    const t0 = performance.now();
    while (reps < 2 || elapsed < ms / WINDOWS) {
      fn();
      reps++;
      elapsed = performance.now() - t0;
    }
    best = Math.min(best, elapsed / 1000 / reps);
  }
  return best;
}

function randomTensor(n: number, seed: number): Tensor {
  const t = Tensor.empty([n], 'float32', 'workspace');
  const d = t.data() as Float32Array, rng = new Rng(seed);
  for (let i = 0; i < n; i++) d[i] = rng.uniform() - 0.5;
  return t;
}

function gemmSlimgrad(sizes: number[], threadCounts: number[], ms: number): GemmRow[] {
  const rows: GemmRow[] = [];
  for (const size of sizes) {
    const a = randomTensor(size * size, 1), b = randomTensor(size * size, 2), c = Tensor.empty([size * size], 'float32', 'workspace');
    for (const threads of threadCounts) {
      setThreads(threads);
      for (const [variant, [transA, transB]] of Object.entries(VARIANTS)) {
        const p: GemmArgs = { batch: 1, m: size, n: size, k: size, transA, transB, accumulate: false, aStride: 0, bStride: 0 };
        const sec = timeIt(() => kernels('float32').gemm(a, b, c, p), ms);
        rows.push({ engine: 'slimgrad', size, variant: variant as GemmRow['variant'], threads, gflops: (2 * size ** 3) / sec / 1e9 });
      }
    }
    a.dispose();
    b.dispose();
    c.dispose();
  }
  return rows;
}

async function gemmTfjs(sizes: number[], ms: number): Promise<GemmRow[]> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const rows: GemmRow[] = [];
  for (const engine of ['tfjs-wasm', 'tfjs-cpu'] as const) {
    const name = engine === 'tfjs-wasm' ? 'wasm' : 'cpu';
    if (!(await tf.setBackend(name))) throw new Error(`bench engine: tfjs backend '${name}' failed to initialize`);
    await tf.ready();
    // tfjs-cpu runs ~1 GFLOP/s: skip the sizes where one call takes seconds.
    for (const size of sizes.filter((s) => engine === 'tfjs-wasm' || s <= 512)) {
      const a = tf.randomUniform([size, size]), b = tf.randomUniform([size, size]);
      for (const [variant, [transA, transB]] of Object.entries(VARIANTS)) {
        // No tf.tidy here: tidy returning a typed array costs tens of ms (engine.md §2.1).
        const sec = timeIt(() => {
          const c = tf.matMul(a, b, transA, transB);
          c.dataSync();
          c.dispose();
        }, ms);
        rows.push({ engine, size, variant: variant as GemmRow['variant'], threads: 1, gflops: (2 * size ** 3) / sec / 1e9 });
      }
      a.dispose();
      b.dispose();
    }
  }
  return rows;
}

/** Runs one training case in a child process (engine-train with SLIMGRAD_BENCH_CASE set), killed after timeoutSec. */
function trainInChild(c: TrainCase, timeoutSec: number): Promise<TrainRow> {
  return new Promise((resolve) => {
    const fail = (error: string): void =>
      resolve({ model: c.model, engine: c.engine, threads: c.threads, batch: TRAIN_SPECS[c.model].batch, samplesPerSec: null, peakRssBytes: null, cpuMsPerStep: null, error });
    // engine-train.ts under tsx, engine-train.js when compiled: the same extension as this file.
    const entry = new URL(`./engine-train${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url);
    const child = fork(fileURLToPath(entry), [], {
      env: { ...process.env, SLIMGRAD_BENCH_CASE: JSON.stringify(c), SLIMGRAD_THREADS: String(c.threads) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill();
      fail(`timed out after ${timeoutSec} s (warm-up plus one training step take longer)`);
    }, timeoutSec * 1000);
    child.on('message', (row: TrainRow) => resolve(row));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && !signal) fail(`exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    });
  });
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      part: { type: 'string', default: 'all' },
      sizes: { type: 'string', default: '256,512,1024' },
      threads: { type: 'string' },
      models: { type: 'string', default: TRAIN_MODELS.join(',') },
      seconds: { type: 'string', default: '2' },
      'case-timeout': { type: 'string', default: '180' },
      'no-tfjs': { type: 'boolean', default: false },
      'no-pytorch': { type: 'boolean', default: false },
    },
  });
  if (!['gemm', 'train', 'all'].includes(values.part!)) throw new UsageError(`bench engine: --part must be gemm, train or all, got '${values.part}'`);
  const sizes = values.sizes!.split(',').map(Number);
  if (sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new UsageError(`bench engine: --sizes must be positive integers, got '${values.sizes}'`);
  const models = values.models!.split(',');
  const unknown = models.filter((m) => !(TRAIN_MODELS as readonly string[]).includes(m));
  if (unknown.length) throw new UsageError(`bench engine: unknown model(s) ${unknown.join(', ')} (available: ${TRAIN_MODELS.join(', ')})`);
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new UsageError(`bench engine: --seconds must be positive, got '${values.seconds}'`);
  const caseTimeout = Number(values['case-timeout']);
  if (!(caseTimeout > 0)) throw new UsageError(`bench engine: --case-timeout must be positive, got '${values['case-timeout']}'`);
  const many = values.threads !== undefined ? Number(values.threads) : defaultThreads();
  if (!Number.isInteger(many) || many < 1) throw new UsageError(`bench engine: --threads must be a positive integer, got '${values.threads}'`);
  const threadCounts = many > 1 ? [1, many] : [1];
  const backend = useFastestBackend();

  const torch = !values['no-pytorch'] ? pytorchAvailable() : false;
  const report: { backend: string; kernels: string | null; pytorch: PytorchLibraries | null; gemm: GemmRow[]; train: TrainRow[] } = {
    backend, kernels: wasmVariant() ?? null, pytorch: null, gemm: [], train: [],
  };
  const noteLibraries = (l: PytorchLibraries | null): void => void (report.pytorch ??= l);
  if (values.part !== 'train') {
    report.gemm = gemmSlimgrad(sizes, threadCounts, seconds * 150);
    if (!values['no-tfjs']) report.gemm.push(...(await gemmTfjs(sizes, seconds * 150)));
    if (!values['no-pytorch']) {
      for (const size of sizes) {
        for (const threads of threadCounts) {
          const r = torch ? runPytorchCase({ kind: 'gemm', size, threads, seconds: seconds / 2 }, caseTimeout) : NOT_INSTALLED;
          noteLibraries(r.libraries);
          report.gemm.push({ engine: 'pytorch', size, variant: 'NN', threads, gflops: r.gflops ?? null, error: r.error });
        }
      }
    }
    printTable(report.gemm.map((r) => ({ ...r, gflops: r.gflops === null ? null : Number(r.gflops.toFixed(2)) })));
  }
  if (values.part !== 'gemm') {
    const engines = values['no-tfjs'] ? (['slimgrad'] as const) : (['slimgrad', 'tfjs-cpu', 'tfjs-wasm'] as const);
    for (const model of models as TrainCase['model'][]) {
      for (const engine of engines) {
        for (const threads of engine === 'slimgrad' ? threadCounts : [1]) {
          report.train.push(await trainInChild({ model, engine, threads, seconds }, caseTimeout));
        }
      }
      if (values['no-pytorch']) continue;
      for (const threads of threadCounts) {
        const batch = TRAIN_SPECS[model].batch;
        const r = torch ? runPytorchCase({ kind: 'train', model, batch, threads, seconds }, caseTimeout) : NOT_INSTALLED;
        noteLibraries(r.libraries);
        report.train.push({ model, engine: 'pytorch', threads, batch, samplesPerSec: r.samplesPerSec ?? null, peakRssBytes: r.peakRssBytes, cpuMsPerStep: null, error: r.error });
      }
    }
    if (report.pytorch) console.log(`PyTorch ${report.pytorch.torch}: BLAS ${report.pytorch.blas?.join(', ') ?? 'none mapped'}; oneDNN ${report.pytorch.onednn ?? 'absent'}${report.pytorch.onednnConvolutions ? ' (convolutions)' : ''}`);
    console.log();
    printTable(report.train.map((r) => ({ ...r, samplesPerSec: r.samplesPerSec === null ? null : Number(r.samplesPerSec.toFixed(1)), cpuMsPerStep: r.cpuMsPerStep === null ? null : Number(r.cpuMsPerStep.toFixed(2)) })));
  }
  const ratios = peerRatios(report.gemm, report.train);
  if (ratios.length) {
    console.log();
    printTable(ratios.map((r) => ({ ...r, ratio: r.ratio === null ? null : Number(r.ratio.toFixed(2)) })));
  }
  if (values.json) printJson({ ...report, ratios });
  return 0;
}

export interface RatioRow {
  kind: 'gemm' | 'train';
  /** Model for training rows, `size variant` for GEMM rows. */
  case: string;
  peer: string;
  /**
   * PyTorch pairs: the thread count both ran at (slimgrad over PyTorch at the same count).
   * Thread scaling (peer 'slimgrad 1 thread'): slimgrad's thread count, over itself at 1 thread.
   * Others: null (slimgrad single-threaded for GEMM, its best thread count for training; tfjs one thread).
   */
  threads: number | null;
  /** slimgrad's figure over the peer's; null when either could not run. */
  ratio: number | null;
}

/** The peer of thread-scaling rows: slimgrad at N threads over slimgrad at 1. */
const SELF = 'slimgrad 1 thread';

/**
 * slimgrad's figure over each peer's, for every case both ran in this run; and each engine's
 * scaling: slimgrad at N threads over 1 (GEMM and training), PyTorch's training at N over 1.
 */
export function peerRatios(gemm: GemmRow[], train: TrainRow[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const over = (a: number | null, b: number | null): number | null => (a && b ? a / b : null);
  for (const g of gemm.filter((r) => r.engine === 'slimgrad' && r.threads === 1)) {
    for (const peer of gemm.filter((r) => r.engine !== 'slimgrad' && r.engine !== 'pytorch' && r.size === g.size && r.variant === g.variant)) {
      rows.push({ kind: 'gemm', case: `${g.size} ${g.variant}`, peer: peer.engine, threads: null, ratio: over(g.gflops, peer.gflops) });
    }
  }
  for (const g of gemm.filter((r) => r.engine === 'slimgrad' && r.threads > 1)) {
    const one = gemm.find((r) => r.engine === 'slimgrad' && r.size === g.size && r.variant === g.variant && r.threads === 1);
    if (one) rows.push({ kind: 'gemm', case: `${g.size} ${g.variant}`, peer: SELF, threads: g.threads, ratio: over(g.gflops, one.gflops) });
  }
  for (const peer of gemm.filter((r) => r.engine === 'pytorch')) {
    const g = gemm.find((r) => r.engine === 'slimgrad' && r.size === peer.size && r.variant === peer.variant && r.threads === peer.threads);
    if (g) rows.push({ kind: 'gemm', case: `${g.size} ${g.variant}`, peer: 'pytorch', threads: peer.threads, ratio: over(g.gflops, peer.gflops) });
  }
  const models = [...new Set(train.map((r) => r.model))];
  for (const model of models) {
    const ours = train.filter((r) => r.model === model && r.engine === 'slimgrad' && r.samplesPerSec !== null);
    if (!ours.length) continue;
    const best = Math.max(...ours.map((r) => r.samplesPerSec!));
    for (const peer of train.filter((r) => r.model === model && r.engine !== 'slimgrad' && r.engine !== 'pytorch')) {
      rows.push({ kind: 'train', case: model, peer: peer.engine, threads: null, ratio: over(best, peer.samplesPerSec) });
    }
    const one = ours.find((r) => r.threads === 1);
    for (const r of ours.filter((r) => r.threads > 1)) {
      if (one) rows.push({ kind: 'train', case: model, peer: SELF, threads: r.threads, ratio: over(r.samplesPerSec, one.samplesPerSec) });
    }
    for (const peer of train.filter((r) => r.model === model && r.engine === 'pytorch')) {
      const same = ours.find((r) => r.threads === peer.threads);
      if (same) rows.push({ kind: 'train', case: model, peer: 'pytorch', threads: peer.threads, ratio: over(same.samplesPerSec, peer.samplesPerSec) });
    }
    for (const peer of train.filter((r) => r.model === model && r.engine === 'pytorch' && r.threads > 1)) {
      const onePeer = train.find((r) => r.model === model && r.engine === 'pytorch' && r.threads === 1);
      if (onePeer) rows.push({ kind: 'train', case: model, peer: 'pytorch 1 thread', threads: peer.threads, ratio: over(peer.samplesPerSec, onePeer.samplesPerSec) });
    }
  }
  return rows;
}
