/**
 * Data: in-memory classification datasets, file loaders (IDX/MNIST, .npz, CIFAR-10), a built-in
 * synthetic image dataset, transforms and a seeded mini-batch loader producing engine tensors.
 * The modules that need no file system are listed in portable.ts (the browser entry's share).
 */
export * from './portable.js';
export { loadCharText, charTextFrom, charExample, charExampleCount, type CharText } from './text.js';
export {
  nodeDecompressors,
  readDataFile,
  loadIdx,
  loadMnist,
  loadNpz,
  loadNpzDataset,
  loadCifar10,
  MNIST_T10K_TRAIN_COUNT,
  type Split,
} from './files.js';
export { loadDataset, DATASET_NAMES, type LoadDatasetOptions } from './catalog.js';
export { loadSplits, type SplitOptions, type Splits } from './splits.js';
export { readTabularFile } from './tabular-file.js';
