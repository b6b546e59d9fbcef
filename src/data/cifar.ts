/**
 * CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin): records of 1 label byte followed
 * by 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major), i.e. CHW already.
 * Pure parsing: no Node APIs.
 */
import { asBytes } from '../util/bytes.js';
import { Dataset } from './dataset.js';
import { DataFormatError } from './errors.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

const PIXELS = 3 * 32 * 32;
const RECORD = 1 + PIXELS;

/** The largest batch read: all 60,000 CIFAR-10 images in one file (the bound for inflating a gzipped batch). */
export const CIFAR10_MAX_BATCH_BYTES = 60000 * RECORD;

/**
 * Parses one CIFAR-10 binary batch into a Dataset of [3, 32, 32] items with pixels in [0, 1]
 * (stored as the file's bytes, divisor 255).
 *
 * @example
 * const test = parseCifarBatch(bytes, 'test_batch.bin'); // 10,000 items
 */
export function parseCifarBatch(data: Uint8Array | ArrayBuffer, fileName: string): Dataset {
  const bytes = asBytes(data);
  if (bytes.length === 0) throw new DataFormatError(fileName, 'empty CIFAR-10 batch');
  if (bytes.length > CIFAR10_MAX_BATCH_BYTES) {
    throw new DataFormatError(fileName, `${bytes.length} bytes is more than all 60,000 CIFAR-10 records (${CIFAR10_MAX_BATCH_BYTES} bytes): not a CIFAR-10 batch`);
  }
  if (bytes.length % RECORD !== 0) {
    throw new DataFormatError(
      fileName,
      `truncated or not a CIFAR-10 binary batch: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records (${Math.floor(bytes.length / RECORD)} full records + ${bytes.length % RECORD} bytes)`,
    );
  }
  const n = bytes.length / RECORD;
  const x = new Uint8Array(n * PIXELS);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = bytes[i * RECORD]!;
    if (label >= CIFAR10_CLASSES.length) throw new DataFormatError(fileName, `label ${label} of record ${i} is outside [0, 10): not a CIFAR-10 batch`);
    y[i] = label;
    const src = i * RECORD + 1;
    const dst = i * PIXELS;
    x.set(bytes.subarray(src, src + PIXELS), dst);
  }
  return new Dataset(x, [3, 32, 32], y, CIFAR10_CLASSES.length, fileName, 255);
}
