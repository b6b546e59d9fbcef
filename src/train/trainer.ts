/**
 * The training loop: mini-batches, forward, cross-entropy, backward, optimizer step, all inside
 * one memory scope per step, with exact memory figures from the ledger.
 */
import type { FloatArray } from '../core/dtype.js';
import { memory, resetPeakMemory } from '../core/ledger.js';
import { scope } from '../core/scope.js';
import { backward } from '../autograd/backward.js';
import { noGrad } from '../autograd/mode.js';
import { DataLoader } from '../data/loader.js';
import type { Dataset } from '../data/dataset.js';
import type { Transform } from '../data/transforms.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/index.js';
import type { Optimizer } from '../optim/optimizer.js';
import { applySchedule, type Schedule } from '../optim/schedule.js';
import { clipGradNorm } from '../optim/optimizer.js';

export interface Progress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  samplesPerSec: number;
  /** Live bytes tracked by the ledger right after the step. */
  liveBytes: number;
  savedBytes: number;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  optimizer: Optimizer;
  seed?: number;
  transforms?: readonly Transform[];
  schedule?: Schedule;
  clipNorm?: number;
  /**
   * Wraps each step's forward pass (where values are saved for backward); activation
   * compression installs its hooks here.
   */
  wrapForward?: <T>(fn: () => T) => T;
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochReport) => void;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  testAccuracy: number | null;
  seconds: number;
}

export interface TrainReport {
  testAccuracy: number | null;
  testLoss: number | null;
  /** Mean training loss of the last epoch. */
  trainLoss: number;
  samplesPerSec: number;
  /** Largest saved-for-backward total at the end of a forward pass, in bytes. */
  peakSavedBytes: number;
  /** Peak of all bytes the ledger tracks (parameters, gradients, optimizer state, activations, saved, workspace). */
  peakBytes: number;
  steps: number;
  seconds: number;
  epochs: EpochReport[];
}

/** Accuracy and mean loss of `model` on `data` (evaluation mode, no graph). */
export function evaluate(model: Module, data: Dataset, batchSize = 256): { accuracy: number; loss: number } {
  const wasTraining = model.training;
  model.eval();
  const loader = new DataLoader(data, { batchSize, shuffle: false });
  let correct = 0, lossSum = 0;
  noGrad(() => {
    for (const { x, y } of loader.epoch(0)) {
      scope(() => {
        const logits = model.call(x);
        lossSum += crossEntropy(logits, y).item() * y.size;
        const l = logits.data() as FloatArray, labels = y.data() as Int32Array;
        const c = logits.shape[1]!;
        for (let i = 0; i < labels.length; i++) {
          let best = 0;
          for (let j = 1; j < c; j++) if (l[i * c + j]! > l[i * c + best]!) best = j;
          if (best === labels[i]) correct++;
        }
      });
      x.dispose();
      y.dispose();
    }
  });
  model.train(wasTraining);
  return { accuracy: data.length ? correct / data.length : 0, loss: data.length ? lossSum / data.length : 0 };
}

/** Trains `model` on `train` and reports test accuracy on `test` after each epoch. */
export function fit(model: Module, train: Dataset, test: Dataset | null, o: FitOptions): TrainReport {
  const loader = new DataLoader(train, { batchSize: o.batchSize, seed: o.seed ?? 0, transforms: o.transforms });
  const wrap = o.wrapForward ?? (<T>(fn: () => T) => fn());
  const params = model.parameters();
  model.train();
  resetPeakMemory();
  let peakSaved = 0, steps = 0, samples = 0;
  const epochs: EpochReport[] = [];
  const t0 = performance.now();
  let lastLoss = NaN, trainTime = 0;
  let lastEval: { accuracy: number; loss: number } | null = null;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const te = performance.now();
    let lossSum = 0, seen = 0, batch = 0;
    for (const { x, y } of loader.epoch(epoch)) {
      if (o.schedule) applySchedule(o.schedule, o.optimizer, steps);
      const loss = scope(() => {
        const l = wrap(() => crossEntropy(model.call(x), y));
        peakSaved = Math.max(peakSaved, memory().current.saved);
        backward(l);
        if (o.clipNorm) clipGradNorm(params, o.clipNorm);
        o.optimizer.step();
        o.optimizer.zeroGrad();
        return l.item();
      });
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch + 1}, batch ${batch + 1} (try a lower --lr)`);
      lossSum += loss * y.size;
      seen += y.size;
      samples += y.size;
      steps++;
      batch++;
      x.dispose();
      y.dispose();
      if (o.onProgress) {
        const m = memory();
        o.onProgress({
          epoch, epochs: o.epochs, batch, batches: loader.numBatches, loss,
          samplesPerSec: samples / ((performance.now() - t0) / 1000), liveBytes: m.totalBytes, savedBytes: m.current.saved,
        });
      }
    }
    lastLoss = lossSum / Math.max(1, seen);
    const trainSeconds = (performance.now() - te) / 1000;
    trainTime += trainSeconds;
    lastEval = test ? evaluate(model, test, o.batchSize) : null; // the training batch: evaluation never needs more memory than a step
    const rep = { epoch, trainLoss: lastLoss, testAccuracy: lastEval?.accuracy ?? null, seconds: trainSeconds };
    epochs.push(rep);
    o.onEpoch?.(rep);
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    testAccuracy: lastEval?.accuracy ?? null,
    testLoss: lastEval?.loss ?? null,
    trainLoss: lastLoss,
    samplesPerSec: samples / Math.max(1e-9, trainTime),
    peakSavedBytes: peakSaved,
    peakBytes: memory().peakTotalBytes,
    steps,
    seconds,
    epochs,
  };
}
