/**
 * The data modules that run anywhere (no file system): datasets, the byte parsers (IDX, npy/npz,
 * CIFAR-10, CSV), bounded decompression around caller-supplied decompressors, the synthetic sets,
 * transforms and the loader. data/index.ts adds the Node file loaders.
 */
export { Dataset, concatDatasets, itemSizeOf, type DatasetValues, type ItemGenerator } from './dataset.js';
export { DataFormatError, formatShape } from './errors.js';
export { parseIdx, decodeIdx, idxDeclaredSize, datasetFromIdx, type IdxArray, type IdxDType } from './idx.js';
export { parseNpy, type NpyArray, type NpyDType } from './npy.js';
export { listZip, readZip, extractEntry, crc32, type ZipEntry, type InflateRaw } from './zip.js';
export { parseNpz, datasetFromArrays, datasetFromNpz, type ArrayDatasetOptions } from './npz.js';
export { parseCifarBatch, CIFAR10_CLASSES, CIFAR10_MAX_BATCH_BYTES } from './cifar.js';
export { syntheticShapes, SYNTHETIC_CLASSES, type SyntheticOptions } from './synthetic.js';
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
export { parseCsv, encodeTabular, loadTabular, parseTabularFile, sniffDelimiter, MISSING_LEVEL, type CsvTable, type TabularOptions, type FeatureGroup, type TabularSplit, type TabularDataset } from './tabular.js';
