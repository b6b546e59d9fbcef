/**
 * Datasets by name, for the CLI and scripts: the built-in synthetic sets (no files needed) and
 * the file-backed ones under a data directory.
 */
import type { Dataset } from './dataset.js';
import { DataFormatError } from './errors.js';
import { loadCifar10, loadMnist, loadNpzDataset, type Split } from './files.js';
import { syntheticShapes } from './synthetic.js';

/** Items of the synthetic sets; split 8,000 / 2,000 like the MNIST t10k convention. */
const SYNTHETIC_ITEMS = 10000;
const SYNTHETIC_TRAIN = 8000;

let lastSynthetic: { key: string; all: Dataset } | null = null;

export const DATASET_NAMES = ['synthetic', 'synthetic-rgb', 'mnist', 'cifar10', '<file>.npz'] as const;

export interface LoadDatasetOptions {
  split: Split;
  /** Directory of the files (mnist: IDX files; cifar10: the *.bin batches). */
  dataDir?: string;
  /** Seed of the synthetic sets (default 0). */
  seed?: number;
}

/**
 * Loads a dataset by name:
 * - `synthetic`: 10,000 grey 28x28 shapes, 10 classes (train = first 8,000, test = last 2,000);
 * - `synthetic-rgb`: the same as 32x32 colour images;
 * - `mnist`: IDX files in `dataDir` (see `loadMnist` for the split rules);
 * - `cifar10`: binary batches in `dataDir`;
 * - a path ending in `.npz`: arrays `x_<split>` / `y_<split>` (the Keras layout, e.g. mnist.npz).
 *
 * @example
 * const train = await loadDataset('synthetic', { split: 'train' });
 * const test = await loadDataset('mnist', { split: 'test', dataDir: '../shared/data/mnist-t10k' });
 */
export async function loadDataset(name: string, options: LoadDatasetOptions): Promise<Dataset> {
  const { split, dataDir, seed = 0 } = options;
  if (name === 'synthetic' || name === 'synthetic-rgb') {
    // The last generated set is kept: train and test (and repeated runs in one process) share it.
    if (lastSynthetic?.key !== `${name}:${seed}`) {
      lastSynthetic = { key: `${name}:${seed}`, all: syntheticShapes(name === 'synthetic' ? { n: SYNTHETIC_ITEMS, seed } : { n: SYNTHETIC_ITEMS, seed, size: 32, channels: 3 }) };
    }
    const all = lastSynthetic.all;
    return split === 'train' ? all.subset(0, SYNTHETIC_TRAIN, `${all.name}-train`) : split === 'test' ? all.subset(SYNTHETIC_TRAIN, SYNTHETIC_ITEMS, `${all.name}-test`) : all;
  }
  if (name.endsWith('.npz')) {
    if (split === 'all') throw new DataFormatError(name, "split 'all' is not defined for .npz files: load 'train' and 'test'");
    return loadNpzDataset(name, { x: `x_${split}`, y: `y_${split}` });
  }
  if (name === 'mnist' || name === 'cifar10') {
    if (!dataDir) throw new RangeError(`dataset '${name}' reads files: give the directory that holds them (dataDir / --data-dir)`);
    return name === 'mnist' ? loadMnist(dataDir, { split }) : loadCifar10(dataDir, { split });
  }
  throw new RangeError(`unknown dataset '${name}' (known: ${DATASET_NAMES.join(', ')})`);
}
