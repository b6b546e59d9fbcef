import { parseArgs } from 'node:util';
import { getBackend } from '../../backends/index.js';
import type { Dataset } from '../../data/dataset.js';
import { loadDataset } from '../../data/catalog.js';
import { saveModule } from '../../io/checkpoint.js';
import { createModel, MODEL_NAMES } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { Adam, AdamW, SGD, type Optimizer } from '../../optim/optimizer.js';
import { cosineLr, type Schedule } from '../../optim/schedule.js';
import { fit, type Progress } from '../../train/trainer.js';
import { Compression, parseMode, type ActMode } from '../../compress/index.js';
import { applyQuantPreset, withConstraints } from '../../quant/models.js';
import { printJson, UsageError, type Command } from '../command.js';

/** Loads a named dataset as [train, test]. MNIST with only the t10k files: first 8,000 train, last 2,000 test. */
export async function loadData(name: string, dir: string | undefined, seed: number): Promise<[Dataset, Dataset]> {
  try {
    const [trainSet, testSet] = await Promise.all((['train', 'test'] as const).map((split) => loadDataset(name, { split, dataDir: dir, seed })));
    return [trainSet!, testSet!];
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

export function makeOptimizer(name: string, params: ReturnType<Module['parameters']>, lr: number, weightDecay: number): Optimizer {
  switch (name) {
    case 'adam':
      return new Adam(params, { lr, weightDecay });
    case 'adamw':
      return new AdamW(params, { lr, weightDecay });
    case 'sgd':
      return new SGD(params, { lr, momentum: 0.9, weightDecay });
    default:
      throw new UsageError(`unknown --optimizer '${name}' (available: adam, adamw, sgd)`);
  }
}

function makeSchedule(name: string, lr: number, steps: number): Schedule | undefined {
  if (name === 'cosine') return cosineLr(lr, steps);
  if (name === 'constant') return undefined;
  throw new UsageError(`unknown --schedule '${name}' (available: cosine, constant)`);
}

function number(flag: string, v: string, integer = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got '${v}'`);
  return n;
}

const MiB = 1024 * 1024;

/** One line of progress, redrawn in place on a terminal. */
function progressLine(p: Progress): string {
  const width = 24, done = Math.round((p.batch / p.batches) * width);
  return `epoch ${p.epoch + 1}/${p.epochs} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ${p.samplesPerSec.toFixed(0)} samples/s mem ${(p.liveBytes / MiB).toFixed(1)} MiB saved ${(p.savedBytes / MiB).toFixed(1)} MiB`;
}

export const train: Command = {
  name: 'train',
  summary: 'train a model: --model mlp|lenet|vgg-small|resnet20|transformer --data synthetic|synthetic-rgb|mnist|cifar10|FILE.npz [--act off|fp16|int8|int4|int2|division] [--quant bnn|xnor|bwn|twn|w8a8] [--json]',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string', default: 'lenet' },
        data: { type: 'string', default: 'synthetic' },
        'data-dir': { type: 'string' },
        epochs: { type: 'string', default: '3' },
        'batch-size': { type: 'string', default: '64' },
        lr: { type: 'string', default: '1e-3' },
        optimizer: { type: 'string', default: 'adam' },
        'weight-decay': { type: 'string', default: '0' },
        schedule: { type: 'string', default: 'cosine' },
        seed: { type: 'string', default: '1' },
        save: { type: 'string' },
        act: { type: 'string', default: 'off' },
        quant: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!MODEL_NAMES.includes(values.model as never)) throw new UsageError(`unknown --model '${values.model}' (available: ${MODEL_NAMES.join(', ')})`);
    const epochs = number('epochs', values.epochs!, true), batchSize = number('batch-size', values['batch-size']!, true);
    const lr = number('lr', values.lr!), seed = number('seed', values.seed!, true), wd = number('weight-decay', values['weight-decay']!);
    if (epochs < 1 || batchSize < 1 || !(lr > 0)) throw new UsageError('--epochs and --batch-size must be >= 1 and --lr > 0');
    const [trainSet, testSet] = await loadData(values.data!, values['data-dir'], seed);
    let model: Module;
    try {
      model = values.quant ? applyQuantPreset(values.model!, values.quant, seed) : createModel(values.model!, trainSet.itemShape, trainSet.numClasses, seed);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    let actMode: ActMode;
    try {
      actMode = parseMode(values.act, 'train --act');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    // One compression session for the whole run: its step counter keys the stochastic rounding.
    const act = new Compression({ mode: actMode, model, seed });
    const optimizer = makeOptimizer(values.optimizer!, model.parameters(), lr, wd);
    const steps = epochs * Math.ceil(trainSet.length / batchSize);
    // Binary/ternary presets clip their latent weights after every step (the kernel constraint).
    if (values.quant) withConstraints(optimizer, model, steps);
    const tty = process.stderr.isTTY && !values.json;
    if (!values.json) {
      console.log(`training ${values.model} (${model.parameterCount()} parameters) on ${values.data}: ${trainSet.length} train / ${testSet.length} test items, backend ${getBackend()}, activation compression ${actMode}`);
    }
    const report = fit(model, trainSet, testSet, {
      epochs, batchSize, optimizer, seed,
      wrapForward: (fn) => act.run(fn),
      schedule: makeSchedule(values.schedule!, lr, steps),
      onProgress: tty ? (p) => process.stderr.write(`\r${progressLine(p)}\x1b[K`) : undefined,
      onEpoch: values.json ? undefined : (e) => {
        if (tty) process.stderr.write('\n');
        console.log(`epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, test accuracy ${((e.testAccuracy ?? 0) * 100).toFixed(2)}%, ${e.seconds.toFixed(1)} s`);
      },
    });
    if (values.save) saveModule(model, values.save, { model: values.model!, data: values.data! });
    const out = {
      model: values.model, data: values.data, act: actMode, quant: values.quant ?? null, epochs, batchSize, lr, optimizer: values.optimizer, seed, backend: getBackend(),
      parameters: model.parameterCount(),
      testAccuracy: report.testAccuracy, testLoss: report.testLoss, trainLoss: report.trainLoss,
      samplesPerSec: report.samplesPerSec, peakSavedBytes: report.peakSavedBytes, peakBytes: report.peakBytes,
      seconds: report.seconds, steps: report.steps,
    };
    if (values.json) printJson(out);
    else {
      console.log(`test accuracy ${((report.testAccuracy ?? 0) * 100).toFixed(2)}%  train loss ${report.trainLoss.toFixed(4)}  ${report.samplesPerSec.toFixed(0)} samples/s`);
      console.log(`peak saved-for-backward ${(report.peakSavedBytes / MiB).toFixed(2)} MiB, peak tracked memory ${(report.peakBytes / MiB).toFixed(2)} MiB${values.save ? `, saved model to ${values.save}` : ''}`);
    }
    model.dispose();
    optimizer.dispose();
    return 0;
  },
};
