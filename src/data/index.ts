/**
 * Data: in-memory classification datasets, file loaders (IDX/MNIST, .npz, CIFAR-10), a built-in
 * synthetic image dataset, transforms and a seeded mini-batch loader producing engine tensors.
 */
export { Dataset, concatDatasets, itemSizeOf } from './dataset.js';
export { DataFormatError, formatShape } from './errors.js';
export { parseIdx, decodeIdx, idxDeclaredSize, datasetFromIdx, type IdxArray, type IdxDType } from './idx.js';
export { parseNpy, type NpyArray, type NpyDType } from './npy.js';
export { listZip, readZip, extractEntry, crc32, type ZipEntry, type InflateRaw } from './zip.js';
export { parseNpz, datasetFromArrays, type ArrayDatasetOptions } from './npz.js';
export { parseCifarBatch, CIFAR10_CLASSES, CIFAR10_MAX_BATCH_BYTES } from './cifar.js';
export { syntheticShapes, SYNTHETIC_CLASSES, type SyntheticOptions } from './synthetic.js';
export { loadCharText, charTextFrom, charExample, charExampleCount, type CharText } from './text.js';
export {
  flipHorizontal,
  shiftImage,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  type Transform,
} from './transforms.js';
export { KeyedRandom, RANDOM_DOMAINS } from './random.js';
export { DataLoader, type DataLoaderOptions, type ArrayBatch, type TensorBatch } from './loader.js';
export { isGzip, gunzipBounded, DEFAULT_MAX_DATA_BYTES, INFLATE_SLACK, type DataLimits, type Decompress, type Decompressors, type DeclaredSize, type GunzipOptions } from './inflate.js';
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
export { parseCsv, encodeTabular, loadTabular, sniffDelimiter, MISSING_LEVEL, type CsvTable, type TabularOptions, type FeatureGroup, type TabularSplit, type TabularDataset } from './tabular.js';
export { readTabularFile, parseTabularFile } from './tabular-file.js';
