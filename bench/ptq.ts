/**
 * `slimgrad bench ptq [--json] [--models lenet,resnet20,torch] [--methods rtn,adaround,aquant,mixed]
 * [--bits W/A,...] [--seeds 3] [--iters 200] [--calib-items 256] [--epochs N] [--checkpoints DIR]
 * [--data-dir DIR] [--latency-only] [--layer-errors]`: post-training quantization (--latency-only: the ONNX and
 * latency rows alone; --bits: only the settings with these weight/activation widths, e.g. 8/8,4/8;
 * --layer-errors: each row also measures every layer's output MSE vs the float model on 256 held-out items).
 *
 * Float LeNet-5 and ResNet-20 are trained on MNIST (t10k: first 8,000 train, last 2,000 test;
 * Adam, cosine, batch 64; cached in --checkpoints when given); `torch` is the PyTorch-trained CNN
 * imported from test/fixtures/onnx/torch_cnn.onnx. For each model, every method x bit setting
 * is calibrated on --calib-items random training items per seed (seeds 1..N) and scored on the
 * 2,000 test items (fake-quantized simulation, identical to the deployed int8 runtime: see
 * test/quant/ptq.test.ts); accuracy is the mean over seeds. `mixed` rows choose bits per layer
 * at the size of uniform 4-bit weights: candidates from Hutchinson Hessian traces, ranked by
 * cross-entropy on 1,024 labeled training items other than the calibration items (RTN for all,
 * then AdaRound for the finalists); the best mixed one replaces the best uniform one only when it
 * passes a paired test on 1,024 further items (cross-entropy lower beyond 2 standard errors, no
 * fewer items correct). Every row also reports the logit MSE, KL and top-1 agreement with the
 * float model, and the cross-entropy and accuracy, on 1,024 other held-out training items. ONNX rows compare
 * onnxruntime-node with slimgrad (float export; QDQ W8A8 export vs the deployed model, codes in
 * LSBs). Latency: per batch, single thread, best of 60 short (5 ms) rounds that interleave
 * slimgrad and ORT (on a shared machine some short rounds run unpreempted); the `ratios` rows
 * divide the deployed int8 time by ORT's float and QDQ times from those rounds.
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../src/autograd/mode.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { getBackend } from '../src/backends/index.js';
import { setThreads, useFastestBackend } from '../src/backends/wasm/index.js';
import type { Dataset } from '../src/data/dataset.js';
import { loadModule, saveModule } from '../src/io/checkpoint.js';
import { loadQuantKernelsFromBuild } from '../src/io/quant.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { importOnnx } from '../src/io/onnx/import.js';
import { createModel } from '../src/nn/models.js';
import { Sequential } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { Adam } from '../src/optim/optimizer.js';
import { cosineLr } from '../src/optim/schedule.js';
import { evaluate, fit } from '../src/train/trainer.js';
import { runDeployed } from '../src/quant/runtime.js';
import { candidateAllocations, hessianTraces, selectBits, type BitChoice } from '../src/quant/ptq/mixed.js';
import { logitGap, logitsOf, mean, quantizedLogits, taskScore } from '../src/quant/ptq/error.js';
import { deployPtq, layerOutputErrors, ptq, ptqBytes, simulate, type PtqMethod, type PtqResult } from '../src/quant/ptq/ptq.js';
import { deployedInputCodes, maxCodeDiff } from '../src/quant/ptq/validate.js';
import { Rng } from '../src/util/rng.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { loadSplits } from '../src/data/splits.js';

const INPUT = [1, 28, 28];
const EPOCHS: Record<string, number> = { lenet: 4, resnet20: 2 };
/**
 * Labeled training items (none of them a calibration item) the mixed-precision selection ranks
 * candidates on, then as many again on which it confirms the best mixed one against uniform.
 */
const HELD_OUT = 1024;
/** Further held-out training items on which every row's output error (vs the float model) is measured. */
const ERROR_ITEMS = 1024;

/** Method x bits settings; `mixed` = Hessian-guided bits at the size of uniform 4-bit weights. */
const SETTINGS: { method: PtqMethod; wBits: number; aBits: number; mixed?: boolean }[] = [
  { method: 'rtn', wBits: 8, aBits: 8 },
  { method: 'rtn', wBits: 4, aBits: 8 },
  { method: 'adaround', wBits: 4, aBits: 8 },
  { method: 'rtn', wBits: 3, aBits: 8 },
  { method: 'adaround', wBits: 3, aBits: 8 },
  { method: 'adaround', wBits: 4, aBits: 8, mixed: true },
  { method: 'rtn', wBits: 4, aBits: 4 },
  { method: 'adaround', wBits: 4, aBits: 4 },
  { method: 'aquant', wBits: 4, aBits: 4 },
  { method: 'adaround', wBits: 2, aBits: 4 },
  { method: 'aquant', wBits: 2, aBits: 4 },
];

async function floatModel(name: string, trainSet: Dataset, testSet: Dataset, dir: string | undefined): Promise<Module> {
  if (name === 'torch') return importOnnx(readFileSync(new URL('../test/fixtures/onnx/torch_cnn.onnx', import.meta.url)), 'torch_cnn.onnx').model;
  const model = createModel(name, INPUT, 10, 1);
  const file = dir ? join(dir, `ptq-${name}.safetensors`) : null;
  if (file && existsSync(file)) loadModule(model, file);
  else {
    const epochs = EPOCHS[name]!, lr = 2e-3;
    const optimizer = new Adam(model.parameters(), { lr });
    fit(model, trainSet, testSet, { epochs, batchSize: 64, optimizer, seed: 1, schedule: cosineLr(lr, epochs * Math.ceil(trainSet.length / 64)) });
    optimizer.dispose();
    if (file) saveModule(model, file);
  }
  return model.eval();
}

/**
 * Best ms per call of each of `fns` (sync or async), timed in `runs` interleaved rounds of at
 * least `minMs` each, after one warm-up call each.
 */
async function timeInterleaved(fns: (() => unknown)[], runs: number, minMs: number): Promise<number[]> {
  for (const f of fns) await f();
  const best = fns.map(() => Infinity);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < fns.length; i++) {
      let reps = 0;
      const t0 = performance.now();
      do {
        const p = fns[i]!();
        if (p instanceof Promise) await p;
        reps++;
      } while (performance.now() - t0 < minMs);
      best[i] = Math.min(best[i]!, (performance.now() - t0) / reps);
    }
  }
  return best;
}

/** The selection's paired test, for the progress line. */
const confirmation = (c: BitChoice['confirmation']) =>
  c ? ` (best mix ${c.bits.join('/')} vs uniform on ${c.items} items: cross-entropy diff upper bound ${c.upper.toPrecision(2)}, correct only mix/uniform ${c.onlyMixed}/${c.onlyUniform}${c.passed ? ', chosen' : ''})` : '';

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      models: { type: 'string', default: 'lenet,resnet20,torch' },
      seeds: { type: 'string', default: '3' },
      iters: { type: 'string', default: '200' },
      'calib-items': { type: 'string', default: '256' },
      methods: { type: 'string', default: 'rtn,adaround,aquant,mixed' },
      bits: { type: 'string' },
      epochs: { type: 'string' },
      checkpoints: { type: 'string' },
      'data-dir': { type: 'string', default: '../shared/data/mnist-t10k' },
      'latency-only': { type: 'boolean', default: false },
      'layer-errors': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const models = values.models!.split(',');
  for (const m of models) if (!['lenet', 'resnet20', 'torch'].includes(m)) throw new UsageError(`unknown model '${m}' (available: lenet, resnet20, torch)`);
  const methods = values.methods!.split(',');
  const key = (s: (typeof SETTINGS)[number]) => (s.mixed ? 'mixed' : s.method);
  for (const m of methods) if (!SETTINGS.some((s) => key(s) === m)) throw new UsageError(`unknown method '${m}' (available: rtn, adaround, aquant, mixed)`);
  const bitsKey = (s: (typeof SETTINGS)[number]) => `${s.wBits}/${s.aBits}`;
  const bitSettings = values.bits?.split(',') ?? SETTINGS.map(bitsKey);
  for (const b of bitSettings) if (!SETTINGS.some((s) => bitsKey(s) === b)) throw new UsageError(`unknown --bits '${b}' (available: ${[...new Set(SETTINGS.map(bitsKey))].join(', ')})`);
  if (values.epochs !== undefined) for (const m of Object.keys(EPOCHS)) EPOCHS[m] = Number(values.epochs);
  const seeds = Number(values.seeds), iters = Number(values.iters), calibN = Number(values['calib-items']);
  if (![seeds, iters, calibN, ...Object.values(EPOCHS)].every((v) => Number.isInteger(v) && v > 0)) throw new UsageError('--seeds, --iters, --calib-items and --epochs must be positive integers');
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch {
    throw new Error('bench ptq compares against onnxruntime-node: install it (npm install --save-dev onnxruntime-node)');
  }
  useFastestBackend();
  setThreads(1);
  await loadQuantKernelsFromBuild();
  const machine = `${process.platform} ${process.arch}, Node ${process.versions.node}, backend ${getBackend()} (1 thread), onnxruntime-node 1 intra-op thread`;
  const { train: trainSet, test: testSet } = await loadSplits('mnist', { dataDir: values['data-dir'], seed: 1 });
  const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });

  const ptqRows: Record<string, unknown>[] = [], onnxRows: Record<string, unknown>[] = [], latencyRows: Record<string, unknown>[] = [], ratioRows: Record<string, unknown>[] = [];
  for (const name of models) {
    const model = await floatModel(name, trainSet, testSet, values.checkpoints);
    const floatAcc = evaluate(model, testSet).accuracy;
    const calibIndices = (seed: number) => {
      const rng = new Rng(seed, 0xca1);
      return Array.from({ length: calibN }, () => Math.floor(rng.uniform() * trainSet.length));
    };
    const calibFor = (seed: number) => trainSet.select(calibIndices(seed)).values();
    /** Training items other than seed's calibration items: the selection's ranking and confirmation items, then the error items. */
    const heldOutFor = (seed: number) => {
      const used = new Set(calibIndices(seed));
      const rest = Array.from(new Rng(seed, 0x4e1d).permutation(trainSet.length)).filter((i) => !used.has(i));
      const part = (from: number, n: number) => {
        const items = trainSet.select(rest.slice(from, from + n));
        return { data: items.values(), shape: [n, ...INPUT], labels: items.y };
      };
      return { rank: part(0, HELD_OUT), confirm: part(HELD_OUT, HELD_OUT), error: part(2 * HELD_OUT, ERROR_ITEMS) };
    };
    let w8a8: PtqResult | null = null;
    for (const s of values['latency-only'] ? [] : SETTINGS.filter((x) => methods.includes(key(x)) && bitSettings.includes(bitsKey(x)))) {
      const accs: number[] = [], mse: number[] = [], kl: number[] = [], agree: number[] = [], heldCe: number[] = [], heldAcc: number[] = [], layerMse: number[][] = [];
      let bytes = 0, bits: number[] | number = s.wBits;
      const chosen: string[] = [], confirmations: BitChoice['confirmation'][] = [];
      for (let seed = 1; seed <= seeds; seed++) {
        const calib = calibFor(seed), held = heldOutFor(seed);
        if (s.mixed) {
          const sens = hessianTraces(model, calib.subarray(0, 64 * 784), [64, ...INPUT], { seed });
          const choice = selectBits(model, calib, [calibN, ...INPUT], candidateAllocations(model, sens, { avgBits: s.wBits }), s.aBits, { method: s.method, iters, seed, heldOut: held.rank, confirm: held.confirm });
          bits = choice.bits;
          chosen.push(bits.join('/'));
          confirmations.push(choice.confirmation);
        }
        const r = ptq(model, calib, [calibN, ...INPUT], { method: s.method, wBits: bits, aBits: s.aBits, iters, seed });
        if (s.method === 'rtn' && s.wBits === 8 && seed === 1) w8a8 = r;
        const q = quantizedLogits(model, r, held.error.data, held.error.shape), gap = logitGap(logitsOf(model, held.error.data, held.error.shape), q, ERROR_ITEMS), task = taskScore(q, held.error.labels);
        heldCe.push(mean(task.ce));
        heldAcc.push(mean(task.correct));
        if (values['layer-errors']) layerMse.push(layerOutputErrors(model, r, held.error.data.subarray(0, 256 * 784), [256, ...INPUT]).map((e) => e.mse));
        mse.push(mean(gap.sq) / 10);
        kl.push(mean(gap.kl));
        agree.push(mean(gap.agree));
        const restore = simulate(model, r);
        accs.push(evaluate(model, testSet).accuracy);
        restore();
        bytes = ptqBytes(model, r);
      }
      const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      const row = {
        model: name, method: s.method, wBits: s.mixed ? `mixed ${Array.isArray(bits) ? bits.join('/') : bits}` : s.wBits, aBits: s.aBits, mixed: !!s.mixed,
        testAccuracy: avg(accs), floatTestAccuracy: floatAcc, bytes, logitMse: avg(mse), kl: avg(kl), floatAgreement: avg(agree), heldOutCe: avg(heldCe), heldOutAccuracy: avg(heldAcc),
        seeds: accs, logitMsePerSeed: mse, klPerSeed: kl, heldOutCePerSeed: heldCe, heldOutAccuracyPerSeed: heldAcc, ...(layerMse.length ? { layerMsePerSeed: layerMse } : {}), ...(s.mixed ? { bitsPerSeed: chosen, confirmations } : {}),
      };
      ptqRows.push(row);
      const f = (v: number[], d: number, k = 1) => v.map((a) => (a * k).toPrecision(d)).join(' ');
      if (!values.json) console.error(`${name} ${s.method} W${row.wBits}A${s.aBits}: ${(row.testAccuracy * 100).toFixed(2)}% (float ${(floatAcc * 100).toFixed(2)}%; seeds ${f(accs, 4, 100)}; logit MSE ${f(mse, 3)}; KL ${f(kl, 3)}; top-1 agreement ${f(agree, 4, 100)}; held-out cross-entropy ${f(heldCe, 3)}, accuracy ${f(heldAcc, 4, 100)}${s.mixed ? `; bits ${chosen.map((b, i) => `${b}${confirmation(confirmations[i]!)}`).join(', ')}` : ''})`);
      if (!values.json && layerMse.length) console.error(`  layer output MSE vs float per seed: ${layerMse.map((l) => l.map((v) => v.toPrecision(3)).join(' ')).join(' | ')}`);
    }

    // ONNX: float export and QDQ (W8A8 RTN, seed 1) in onnxruntime-node vs slimgrad.
    w8a8 ??= ptq(model, calibFor(1), [calibN, ...INPUT], { method: 'rtn', wBits: 8, aBits: 8 });
    const n = 64, x = testSet.values(0, n), shape = [n, ...INPUT];
    const yFloat = noGrad(() => scope(() => model.call(fromValues(x, shape)).values()));
    const floatBytes = exportOnnx(model, INPUT);
    const floatSession = await session(floatBytes);
    const feed = { input: new ort.Tensor('float32', Float32Array.from(x), shape) };
    onnxRows.push({ model: name, kind: 'float', maxAbsDiff: maxAbs((await floatSession.run(feed)).output!.data as Float32Array, yFloat), maxLsbDiff: null });
    const qdqSession = await session(exportOnnx(model, INPUT, { ptq: w8a8, exposeCodes: true }));
    const out = await qdqSession.run(feed);
    const deployable = model instanceof Sequential;
    const deployed = deployable ? deployPtq(model, w8a8, INPUT) : null;
    let ref: ArrayLike<number>;
    if (deployed) ref = runDeployed(deployed, x, shape).data;
    else {
      const restore = simulate(model, w8a8);
      ref = noGrad(() => scope(() => model.call(fromValues(x, shape)).values()));
      restore();
    }
    const codes = deployed ? deployedInputCodes(deployed, x, shape) : null;
    const lsb = codes ? Math.max(...qdqSession.outputNames.slice(1).map((k, i) => maxCodeDiff(out[k]!.data as Int8Array, codes[i]!))) : null;
    onnxRows.push({ model: name, kind: 'qdq', maxAbsDiff: maxAbs(out.output!.data as Float32Array, ref), maxLsbDiff: lsb, against: deployed ? 'deployed int8' : 'simulation' });

    // Latency at batch 1 and 32: slimgrad float engine, slimgrad deployed int8, ORT float, ORT QDQ,
    // interleaved round by round (best of each), so their ratios come from the same load.
    const qdqPlain = await session(exportOnnx(model, INPUT, { ptq: w8a8 }));
    for (const batch of [1, 32]) {
      const xb = testSet.values(0, batch), sb = [batch, ...INPUT];
      const t = new ort.Tensor('float32', Float32Array.from(xb), sb);
      const fns: (() => unknown)[] = [() => floatSession.run({ input: t }), () => qdqPlain.run({ input: t }), () => noGrad(() => scope(() => void model.call(fromValues(xb, sb))))];
      if (deployed) fns.push(() => void runDeployed(deployed, xb, sb));
      const [ortFloat, ortQdq, floatMs, int8Ms] = await timeInterleaved(fns, 60, 5);
      latencyRows.push({ model: name, engine: 'slimgrad', kind: 'float', batch, ms: floatMs });
      if (deployed) {
        latencyRows.push({ model: name, engine: 'slimgrad', kind: 'int8', batch, ms: int8Ms });
        ratioRows.push({ model: name, batch, int8VsOrtFloat: int8Ms! / ortFloat!, int8VsOrtQdq: int8Ms! / ortQdq! });
      }
      latencyRows.push({ model: name, engine: 'ort', kind: 'float', batch, ms: ortFloat }, { model: name, engine: 'ort', kind: 'qdq', batch, ms: ortQdq });
    }
    model.dispose();
  }
  if (!values.json) {
    console.log(`bench ptq on ${machine}; MNIST t10k 8k/2k; ${calibN} calibration items, ${seeds} seeds, ${iters} AdaRound/AQuant iterations per layer`);
    printTable(ptqRows.map(({ seeds: _s, bitsPerSeed: _b, confirmations: _c, logitMsePerSeed: _m, klPerSeed: _k, heldOutCePerSeed: _hc, heldOutAccuracyPerSeed: _ha, layerMsePerSeed: _l, ...r }) => r));
    console.log('');
    printTable(onnxRows);
    console.log('');
    printTable(latencyRows);
    console.log('');
    console.log('deployed int8 time / onnxruntime-node time (same interleaved rounds; < 1: slimgrad faster):');
    printTable(ratioRows);
  }
  printJson({ suite: 'ptq', machine, calibItems: calibN, seeds, iters, ptq: ptqRows, onnx: onnxRows, latency: latencyRows, ratios: ratioRows });
  return 0;
}
