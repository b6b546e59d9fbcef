/**
 * The training loop: mini-batches, forward, cross-entropy, backward, optimizer step, all inside
 * one memory scope per step, with exact memory figures from the ledger.
 */
import type { FloatArray } from '../core/dtype.js';
import { memory, resetPeakMemory } from '../core/ledger.js';
import { StepPlan } from '../core/plan.js';
import { scope } from '../core/scope.js';
import { backward } from '../autograd/backward.js';
import { noGrad } from '../autograd/mode.js';
import { DataLoader } from '../data/loader.js';
import type { Dataset } from '../data/dataset.js';
import type { Transform } from '../data/transforms.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../core/tensor.js';
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
  /** Saved-for-backward bytes of this step (alive after its forward pass). */
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
  /** The training loss of a batch (default: crossEntropy(model.call(x), y)); once-QAT sums several widths here, distillation adds its terms. */
  loss?: (model: Module, x: Tensor, y: Tensor) => Tensor;
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochReport) => void;
  /** Continue a run from where a checkpoint's TrainPosition says it stopped (optimizer state restored by the caller). */
  resume?: TrainPosition;
  /** Call onCheckpoint every this many steps (and after the last one). */
  checkpointEvery?: number;
  onCheckpoint?: (at: TrainPosition) => void;
  /** Stop after this many steps in all (as if interrupted; resume continues the run). */
  maxSteps?: number;
  /** Evaluated after each epoch (a split held out of the training data); its accuracy drives `patience`. */
  val?: Dataset | null;
  /** Stop when validation accuracy has not improved for this many epochs. */
  patience?: number;
}

/**
 * Where a run stands after `steps` optimizer steps: epoch `epoch`, `batch` batches into it. The
 * data order depends only on (seed, epoch), so this, the optimizer state and the weights resume a
 * run bit for bit. lossSum/seen carry the partial epoch's loss for the report.
 */
export interface TrainPosition {
  epoch: number;
  batch: number;
  steps: number;
  lossSum: number;
  seen: number;
  /** Best validation accuracy so far and epochs since it improved (early stopping). */
  bestVal: number;
  staleEpochs: number;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  testAccuracy: number | null;
  /** Accuracy on the validation split, when one is given. */
  valAccuracy: number | null;
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
  /** Why training ended before its last epoch: 'max-steps' or 'early-stopping'; null when it ran to the end. */
  stopped: 'max-steps' | 'early-stopping' | null;
  /** Where the run ended (resume from here). */
  position: TrainPosition;
}

/** Accuracy and mean loss of `model` on `data` (evaluation mode, no graph). */
export function evaluate(model: Module, data: Dataset, batchSize = 256): { accuracy: number; loss: number } {
  const { predictions, loss } = predict(model, data, batchSize);
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === data.y[i]) correct++;
  return { accuracy: data.length ? correct / data.length : 0, loss };
}

/**
 * The predicted class (arg-max logit, first on ties) of every item of `data`, in order, and the
 * mean cross-entropy loss (evaluation mode, no graph).
 *
 * @example
 * const { predictions, loss } = predict(model, test);
 */
export function predict(model: Module, data: Dataset, batchSize = 256): { predictions: Int32Array; loss: number } {
  const wasTraining = model.training;
  model.eval();
  const loader = new DataLoader(data, { batchSize, shuffle: false });
  const predictions = new Int32Array(data.length);
  let lossSum = 0, at = 0;
  noGrad(() => {
    for (const { x, y } of loader.epoch(0)) {
      scope(() => {
        const logits = model.call(x);
        lossSum += crossEntropy(logits, y).item() * y.size;
        const l = logits.data() as FloatArray;
        const c = logits.shape[1]!;
        for (let i = 0; i < y.size; i++) {
          let best = 0;
          for (let j = 1; j < c; j++) if (l[i * c + j]! > l[i * c + best]!) best = j;
          predictions[at++] = best;
        }
      });
      x.dispose();
      y.dispose();
    }
  });
  model.train(wasTraining);
  return { predictions, loss: data.length ? lossSum / data.length : 0 };
}

/** Per-class precision and recall and the confusion matrix (rows: true class, columns: predicted). */
export interface ClassificationReport {
  accuracy: number;
  confusion: number[][];
  precision: number[];
  recall: number[];
}

/**
 * Scores predictions against labels; precision/recall of a class with no predicted/true items is 0.
 *
 * @example
 * classificationReport(Int32Array.of(0, 1, 1), Int32Array.of(0, 1, 0), 2).confusion; // [[1, 1], [0, 1]]
 */
export function classificationReport(predictions: ArrayLike<number>, labels: ArrayLike<number>, classes: number): ClassificationReport {
  if (predictions.length !== labels.length) throw new RangeError(`classificationReport: ${predictions.length} predictions for ${labels.length} labels`);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    confusion[labels[i]!]![predictions[i]!]!++;
    if (labels[i] === predictions[i]) correct++;
  }
  const col = (j: number) => confusion.reduce((s, r) => s + r[j]!, 0);
  const row = (i: number) => confusion[i]!.reduce((s, v) => s + v, 0);
  return {
    accuracy: labels.length ? correct / labels.length : 0,
    confusion,
    precision: confusion.map((r, j) => (col(j) ? r[j]! / col(j) : 0)),
    recall: confusion.map((r, i) => (row(i) ? r[i]! / row(i) : 0)),
  };
}

/** Trains `model` on `train` and reports test accuracy on `test` after each epoch. */
export function fit(model: Module, train: Dataset, test: Dataset | null, o: FitOptions): TrainReport {
  const loader = new DataLoader(train, { batchSize: o.batchSize, seed: o.seed ?? 0, transforms: o.transforms });
  const wrap = o.wrapForward ?? (<T>(fn: () => T) => fn());
  const params = model.parameters();
  model.train();
  resetPeakMemory();
  if (o.checkpointEvery !== undefined && !(Number.isInteger(o.checkpointEvery) && o.checkpointEvery >= 1)) throw new RangeError(`fit: checkpointEvery must be a positive integer, got ${o.checkpointEvery}`);
  const start = o.resume ?? { epoch: 0, batch: 0, steps: 0, lossSum: 0, seen: 0, bestVal: -1, staleEpochs: 0 };
  let peakSaved = 0, steps = start.steps, samples = 0;
  let { bestVal, staleEpochs } = start;
  let stopped: TrainReport['stopped'] = null;
  const epochs: EpochReport[] = [];
  const t0 = performance.now();
  let lastLoss = NaN, trainTime = 0;
  let lastEval: { accuracy: number; loss: number } | null = null;
  let position: TrainPosition = { ...start };
  const plan = new StepPlan(); // every step allocates alike: replay one planned arena layout
  for (let epoch = start.epoch; epoch < o.epochs && !stopped; epoch++) {
    const te = performance.now();
    const resuming = epoch === start.epoch;
    let lossSum = resuming ? start.lossSum : 0, seen = resuming ? start.seen : 0, batch = resuming ? start.batch : 0;
    for (const { x, y } of loader.epoch(epoch, batch)) {
      if (o.schedule) applySchedule(o.schedule, o.optimizer, steps);
      let stepSaved = 0;
      const loss = plan.run(() => scope(() => {
        const l = wrap(() => (o.loss ? o.loss(model, x, y) : crossEntropy(model.call(x), y)));
        stepSaved = memory().current.saved;
        peakSaved = Math.max(peakSaved, stepSaved);
        backward(l);
        if (o.clipNorm) clipGradNorm(params, o.clipNorm);
        o.optimizer.step();
        o.optimizer.zeroGrad();
        return l.item();
      }));
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
          samplesPerSec: samples / ((performance.now() - t0) / 1000), liveBytes: m.totalBytes, savedBytes: stepSaved,
        });
      }
      position = batch === loader.numBatches
        ? { epoch: epoch + 1, batch: 0, steps, lossSum: 0, seen: 0, bestVal, staleEpochs }
        : { epoch, batch, steps, lossSum, seen, bestVal, staleEpochs };
      if (o.maxSteps !== undefined && steps >= o.maxSteps) {
        stopped = 'max-steps';
        break;
      }
      // A checkpoint at an epoch's end is written after its evaluation (below).
      if (o.checkpointEvery && steps % o.checkpointEvery === 0 && batch < loader.numBatches) o.onCheckpoint?.(position);
    }
    if (stopped === 'max-steps' && batch < loader.numBatches) {
      // Interrupted mid-epoch: report that epoch's loss and speed so far (no evaluation ran).
      lastLoss = lossSum / Math.max(1, seen);
      trainTime += (performance.now() - te) / 1000;
      if (o.checkpointEvery) o.onCheckpoint?.(position);
      break;
    }
    lastLoss = lossSum / Math.max(1, seen);
    const trainSeconds = (performance.now() - te) / 1000;
    trainTime += trainSeconds;
    lastEval = test ? evaluate(model, test, o.batchSize) : null; // the training batch: evaluation never needs more memory than a step
    const valAccuracy = o.val ? evaluate(model, o.val, o.batchSize).accuracy : null;
    if (valAccuracy !== null) {
      if (valAccuracy > bestVal) [bestVal, staleEpochs] = [valAccuracy, 0];
      else staleEpochs++;
      if (o.patience !== undefined && staleEpochs >= o.patience && epoch + 1 < o.epochs) stopped = 'early-stopping';
    }
    position = { ...position, bestVal, staleEpochs };
    if (o.checkpointEvery) o.onCheckpoint?.(position);
    const rep = { epoch, trainLoss: lastLoss, testAccuracy: lastEval?.accuracy ?? null, valAccuracy, seconds: trainSeconds };
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
    stopped,
    position,
  };
}
