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
    // Only the split's items are generated (item i depends only on (seed, i)).
    const [start, end] = split === 'train' ? [0, SYNTHETIC_TRAIN] : split === 'test' ? [SYNTHETIC_TRAIN, SYNTHETIC_ITEMS] : [0, SYNTHETIC_ITEMS];
    const geometry = name === 'synthetic' ? {} : { size: 32, channels: 3 as const };
    const d = syntheticShapes({ n: end - start, start, seed, ...geometry });
    return split === 'all' ? d : d.subset(0, d.length, `${d.name}-${split}`);
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
