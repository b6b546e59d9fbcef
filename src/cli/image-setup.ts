/**
 * Shared by `slimgrad explain --data mnist` and `slimgrad bench explain`: LeNet-5 and its
 * binary-weight twin (BWN LeNet-5, same architecture) trained briefly on the MNIST t10k train split
 * (or loaded from a cache directory), and the binary one packed for the deploy runtime.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { loadMnist } from '../data/files.js';
import { loadModule, saveModule } from '../io/checkpoint.js';
import { lenet5 } from '../nn/models.js';
import type { Module } from '../nn/module.js';
import { Adam } from '../optim/optimizer.js';
import { bwnLenet5, convert, withConstraints, type DeployedModel } from '../quant/index.js';
import { evaluate, fit } from '../train/index.js';
import { UsageError } from './command.js';

/** Default MNIST directory: ../shared/data/mnist-t10k relative to the working directory. */
export const DEFAULT_MNIST_DIR = join('..', 'shared', 'data', 'mnist-t10k');
export const MNIST_SHAPE = { channels: 1, height: 28, width: 28 };

export interface MnistModels {
  test: Dataset;
  /** Mean training image (the 'mean' masker). */
  meanImage: Float32Array;
  float: Module;
  binary: Module;
  /** `binary` packed by quant's convert (1-bit weights), run by runDeployed. */
  deployed: DeployedModel;
  floatAccuracy: number;
  binaryAccuracy: number;
  /** Seconds spent training (0 when both came from the cache). */
  trainSeconds: number;
}

/**
 * Trains (or loads from `modelDir`) float and BWN LeNet-5 for `epochs` epochs on the first
 * `trainImages` training images (Adam, lr 2e-3, batch 64), and packs the binary one.
 */
export async function prepareMnistModels(command: string, dataDir: string, epochs: number, trainImages: number, seed: number, modelDir?: string, log: (line: string) => void = () => {}): Promise<MnistModels> {
  if (!existsSync(dataDir)) throw new UsageError(`${command}: MNIST directory ${dataDir} not found (point --mnist-dir at the IDX files)`);
  const all = await loadMnist(dataDir, { split: 'train' });
  const train = all.subset(0, Math.min(trainImages, all.length));
  const test = await loadMnist(dataDir, { split: 'test' });
  const meanImage = new Float32Array(train.itemSize);
  const pixels = train.values();
  for (let i = 0; i < train.length; i++) for (let k = 0; k < train.itemSize; k++) meanImage[k]! += pixels[i * train.itemSize + k]! / train.length;
  let trainSeconds = 0;
  const prepare = (name: string, model: Module, constrained: boolean): Module => {
    const path = modelDir && join(modelDir, `explain-lenet-${name}-e${epochs}-n${train.length}-s${seed}.safetensors`);
    if (path && existsSync(path)) {
      loadModule(model, path);
      log(`model: ${name} LeNet-5 loaded from ${path}`);
    } else {
      const start = performance.now();
      const adam = new Adam(model.parameters(), { lr: 2e-3 });
      fit(model, train, null, { epochs, batchSize: 64, seed, optimizer: constrained ? withConstraints(adam, model) : adam });
      adam.dispose();
      trainSeconds += (performance.now() - start) / 1000;
      log(`model: ${name} LeNet-5 trained ${epochs} epoch(s) on ${train.length} images in ${((performance.now() - start) / 1000).toFixed(1)}s`);
      if (path) saveModule(model, path);
    }
    model.eval();
    return model;
  };
  const float = prepare('float', lenet5(10, seed), false);
  const binary = prepare('bwn', bwnLenet5(seed), true);
  return {
    test, meanImage, float, binary, deployed: convert(binary, [1, 28, 28]),
    floatAccuracy: evaluate(float, test).accuracy, binaryAccuracy: evaluate(binary, test).accuracy, trainSeconds,
  };
}
