/**
 * File loaders: read files (gzip detected by its magic bytes and inflated) and hand the bytes to
 * the pure parsers. Node modules are imported lazily inside the functions, so importing
 * `src/data` in a browser works; only calling these loaders needs Node.
 */
import { concatDatasets, type Dataset } from './dataset.js';
import { DataFormatError } from './errors.js';
import { datasetFromIdx, decodeIdx, type IdxArray } from './idx.js';
import { gunzipBounded, isGzip, type DataLimits, type Decompress, type Decompressors, type GunzipOptions } from './inflate.js';
import { datasetFromNpz, parseNpz, type ArrayDatasetOptions } from './npz.js';
import type { NpyArray } from './npy.js';
import { CIFAR10_MAX_BATCH_BYTES, parseCifarBatch } from './cifar.js';

export type Split = 'train' | 'test' | 'all';

async function node() {
  const [fs, zlib, path] = await Promise.all([import('node:fs/promises'), import('node:zlib'), import('node:path')]);
  return { fs, zlib, path };
}

/**
 * node:zlib's raw-deflate and gzip decompressors in the bounded form the pure parsers take: they
 * stop at `maxOutputLength` (zlib's own limit, so the memory is never spent) and return null.
 *
 * @example
 * const { inflateRaw } = await nodeDecompressors();
 * const arrays = parseNpz(bytes, 'data.npz', inflateRaw, { maxBytes: 2 ** 28 });
 */
export async function nodeDecompressors(): Promise<Decompressors> {
  const { zlib } = await node();
  const bounded =
    (run: (b: Uint8Array, o: import('node:zlib').ZlibOptions) => Uint8Array): Decompress =>
    (compressed, maxOutputLength, partial) => {
      try {
        return run(compressed, { maxOutputLength: Math.max(1, maxOutputLength), ...(partial ? { finishFlush: zlib.constants.Z_SYNC_FLUSH } : {}) });
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
        throw e;
      }
    };
  return { inflateRaw: bounded(zlib.inflateRawSync), gunzip: bounded(zlib.gunzipSync) };
}

async function readBytes(file: string): Promise<Uint8Array> {
  const { fs } = await node();
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw new DataFormatError(file, `cannot read: ${(e as Error).message}`);
  }
}

/**
 * The bytes of a file, gunzipped when it is gzip data (whatever its name), no further than its
 * gzip trailer declares and `limits.maxBytes` (default 1 GiB).
 */
export async function readDataFile(file: string, limits?: GunzipOptions): Promise<Uint8Array> {
  const bytes = await readBytes(file);
  if (!isGzip(bytes)) return bytes;
  return gunzipBounded(bytes, file, (await nodeDecompressors()).gunzip, limits);
}

/** Reads an IDX file, raw or gzipped (inflated no further than its header declares). */
export async function loadIdx(file: string, limits?: DataLimits): Promise<IdxArray> {
  return decodeIdx(await readBytes(file), file, (await nodeDecompressors()).gunzip, limits);
}

/**
 * The first of `dir/base`, `dir/base.gz` and the same with the last '-' as '.' (the
 * `t10k-images.idx3-ubyte` spelling of some mirrors) that exists; null if none.
 */
async function findFile(dir: string, base: string): Promise<string | null> {
  const { fs, path } = await node();
  const dotted = base.replace(/-(?=[^-]*-ubyte$)/, '.');
  for (const candidate of [base, `${base}.gz`, dotted, `${dotted}.gz`]) {
    const p = path.join(dir, candidate);
    try {
      await fs.access(p);
      return p;
    } catch {
      // try the next name
    }
  }
  return null;
}

async function loadIdxPair(dir: string, prefix: string, name: string, limits?: DataLimits): Promise<Dataset | null> {
  const imagesFile = await findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = await findFile(dir, `${prefix}-labels-idx1-ubyte`);
  if (!imagesFile && !labelsFile) return null;
  if (!imagesFile || !labelsFile) {
    throw new DataFormatError(imagesFile ?? labelsFile!, `found without its ${imagesFile ? 'labels' : 'images'} file (${prefix}-${imagesFile ? 'labels-idx1' : 'images-idx3'}-ubyte[.gz]) in ${dir}`);
  }
  const [images, labels] = await Promise.all([loadIdx(imagesFile, limits), loadIdx(labelsFile, limits)]);
  return datasetFromIdx(images, labels, { images: imagesFile, labels: labelsFile, dataset: name });
}

/** The names in a data directory; an unreadable or missing one is an error saying which and why. */
async function listDirectory(dir: string, what: string): Promise<string[]> {
  const { fs } = await node();
  try {
    return await fs.readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : (e as Error).message;
    throw new DataFormatError(dir, `cannot read the ${what} directory: ${why}`);
  }
}

/** Items of the t10k file that form the training set when only t10k is available. */
export const MNIST_T10K_TRAIN_COUNT = 8000;

/**
 * MNIST (or Fashion-MNIST, same file names) from a directory of IDX files, raw or gzipped.
 * With train-* and t10k-* files: the standard 60,000 / 10,000 split. With only t10k-* files (as
 * in ../shared/data/mnist-t10k): train = the first 8,000, test = the last 2,000, in file order.
 * 'all' is train followed by test. Items are [1, 28, 28] in [0, 1].
 *
 * @example
 * const train = await loadMnist('../shared/data/mnist-t10k', { split: 'train' }); // 8,000 items
 */
export async function loadMnist(dir: string, options: { split: Split } & DataLimits): Promise<Dataset> {
  await listDirectory(dir, 'MNIST');
  const hasTrainFiles = (await findFile(dir, 'train-images-idx3-ubyte')) !== null || (await findFile(dir, 'train-labels-idx1-ubyte')) !== null;
  const pair = async (prefix: 'train' | 't10k', name: string): Promise<Dataset> => {
    const d = await loadIdxPair(dir, prefix, name, options);
    if (!d) throw new DataFormatError(dir, `no MNIST ${prefix} files: expected ${prefix}-images-idx3-ubyte[.gz] and ${prefix}-labels-idx1-ubyte[.gz]`);
    return d;
  };
  if (hasTrainFiles) {
    if (options.split === 'train') return pair('train', 'mnist-train');
    if (options.split === 'test') return pair('t10k', 'mnist-test');
    return concatDatasets([await pair('train', 'mnist-train'), await pair('t10k', 'mnist-test')], 'mnist');
  }
  const t10k = await pair('t10k', 'mnist-t10k');
  if (t10k.length <= MNIST_T10K_TRAIN_COUNT) {
    throw new DataFormatError(dir, `the t10k files hold ${t10k.length} images; the t10k-only split needs more than ${MNIST_T10K_TRAIN_COUNT}`);
  }
  if (options.split === 'train') return t10k.subset(0, MNIST_T10K_TRAIN_COUNT, 'mnist-t10k-train');
  if (options.split === 'test') return t10k.subset(MNIST_T10K_TRAIN_COUNT, t10k.length, 'mnist-t10k-test');
  return t10k;
}

/**
 * The arrays of an .npz file, keyed by name.
 *
 * @example
 * const arrays = await loadNpz('mnist.npz'); // Map { 'x_train' => ..., 'y_train' => ..., ... }
 */
export async function loadNpz(file: string, limits?: DataLimits): Promise<Map<string, NpyArray>> {
  return parseNpz(await readBytes(file), file, (await nodeDecompressors()).inflateRaw, limits);
}

/**
 * A dataset from two arrays of an .npz file (default keys 'x' and 'y').
 *
 * @example
 * const train = await loadNpzDataset('mnist.npz', { x: 'x_train', y: 'y_train' });
 */
export async function loadNpzDataset(
  file: string,
  options: { x?: string; y?: string } & Partial<ArrayDatasetOptions> & DataLimits = {},
): Promise<Dataset> {
  return datasetFromNpz(await loadNpz(file, options), file, options);
}

/**
 * CIFAR-10 from a directory of binary batches (cifar-10-batches-bin): 'train' = data_batch_*.bin
 * in order, 'test' = test_batch.bin, 'all' = both. Items are [3, 32, 32] in [0, 1].
 *
 * @example
 * const test = await loadCifar10('data/cifar-10-batches-bin', { split: 'test' });
 */
export async function loadCifar10(dir: string, options: { split: Split } & DataLimits): Promise<Dataset> {
  const { path } = await node();
  const names = await listDirectory(dir, 'CIFAR-10');
  const batchNumber = (f: string) => Number(/^data_batch_(\d+)\.bin$/.exec(f)![1]);
  const trainFiles = names.filter((f) => /^data_batch_\d+\.bin$/.test(f)).sort((a, b) => batchNumber(a) - batchNumber(b));
  const testFiles = names.filter((f) => f === 'test_batch.bin');
  const files = options.split === 'train' ? trainFiles : options.split === 'test' ? testFiles : [...trainFiles, ...testFiles];
  if (files.length === 0) throw new DataFormatError(dir, `no CIFAR-10 ${options.split} batches (expected data_batch_N.bin / test_batch.bin)`);
  // A gzipped batch has no header declaring its size: its trailer may claim no more than all of CIFAR-10.
  const limits: GunzipOptions = { maxBytes: options.maxBytes, atMost: { bytes: CIFAR10_MAX_BATCH_BYTES, by: 'all 60,000 CIFAR-10 records' } };
  const parts = await Promise.all(files.map(async (f) => parseCifarBatch(await readDataFile(path.join(dir, f), limits), path.join(dir, f))));
  return parts.length === 1 ? parts[0]! : concatDatasets(parts, `cifar10-${options.split}`);
}
