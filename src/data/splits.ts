/**
 * The train / validation / test splits of a named dataset, as the CLI, the benchmarks and scripts
 * use them: an optional item limit for quick runs and an optional validation split held out of the
 * training set (the test split is never touched).
 *
 * @example
 * const { train, val, test } = await loadSplits('mnist', { dataDir: '../shared/data/mnist-t10k', valFraction: 0.1 });
 * // MNIST t10k only: train = 7,200 items, val = the last 800 of the 8,000 train items, test = 2,000
 */
import type { Dataset } from './dataset.js';
import { loadDataset } from './catalog.js';

export interface SplitOptions {
  /** Directory of the dataset files (mnist, cifar10). */
  dataDir?: string;
  /** Seed of the synthetic sets (default 0). */
  seed?: number;
  /** Keep only the first `limit` items of the train and of the test split. */
  limit?: number;
  /** Fraction in [0, 1) of the (limited) train split held out, from its end, for validation. */
  valFraction?: number;
}

export interface Splits {
  train: Dataset;
  /** The held-out part of the train split; null without valFraction. */
  val: Dataset | null;
  test: Dataset;
}

/** Loads a named dataset's splits (see loadDataset for the names). */
export async function loadSplits(name: string, options: SplitOptions = {}): Promise<Splits> {
  const { dataDir, seed = 0, limit, valFraction = 0 } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`loadSplits: limit must be a positive integer, got ${limit}`);
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`loadSplits: valFraction must be in [0, 1), got ${valFraction}`);
  const [fullTrain, fullTest] = await Promise.all((['train', 'test'] as const).map((split) => loadDataset(name, { split, dataDir, seed })));
  const cap = (d: Dataset) => (limit !== undefined && limit < d.length ? d.subset(0, limit, `${d.name}[:${limit}]`) : d);
  const all = cap(fullTrain!), test = cap(fullTest!);
  const held = Math.round(all.length * valFraction);
  if (valFraction > 0 && (held < 1 || held >= all.length)) {
    throw new RangeError(`a validation fraction of ${valFraction} leaves ${all.length - held} train / ${held} validation items of ${all.length}: each needs at least one`);
  }
  if (held === 0) return { train: all, val: null, test };
  return { train: all.subset(0, all.length - held, `${all.name}-train`), val: all.subset(all.length - held, all.length, `${all.name}-val`), test };
}
