/**
 * IDX files (the MNIST family): magic 0x00 0x00 <dtype> <rank>, then `rank` big-endian uint32
 * dimensions, then the elements big-endian in row-major order. Pure parsing: no Node APIs.
 */
import { asBytes } from '../util/bytes.js';
import { Dataset } from './dataset.js';
import { DataFormatError, elementCount, formatShape } from './errors.js';
import { gunzipBounded, isGzip, type DataLimits, type DeclaredSize, type Decompress } from './inflate.js';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** A parsed IDX tensor. */
export interface IdxArray {
  dtype: IdxDType;
  shape: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const IDX_DTYPES: Record<number, { dtype: IdxDType; bytes: number }> = {
  0x08: { dtype: 'uint8', bytes: 1 },
  0x09: { dtype: 'int8', bytes: 1 },
  0x0b: { dtype: 'int16', bytes: 2 },
  0x0c: { dtype: 'int32', bytes: 4 },
  0x0d: { dtype: 'float32', bytes: 4 },
  0x0e: { dtype: 'float64', bytes: 8 },
};

interface IdxHeader {
  kind: { dtype: IdxDType; bytes: number };
  shape: number[];
  headerBytes: number;
  /** Header plus elements: the exact size of the file. */
  totalBytes: number;
}

/**
 * The header at the start of `bytes`; null when `bytes` ends before it does (so that a gzip
 * stream's first inflated bytes can be peeked at); throws for a bad magic, dtype or rank.
 */
function readIdxHeader(bytes: Uint8Array, fileName: string): IdxHeader | null {
  if (bytes.length < 4) return null;
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    const hint = bytes[0] === 0x1f && bytes[1] === 0x8b ? ' (this is gzip data: decompress it first)' : '';
    throw new DataFormatError(fileName, `bad IDX magic ${magic}: expected 00 00 <dtype> <rank>${hint}`);
  }
  const dtypeCode = bytes[2]!;
  const rank = bytes[3]!;
  const kind = IDX_DTYPES[dtypeCode];
  if (!kind) throw new DataFormatError(fileName, `unsupported IDX dtype code 0x${dtypeCode.toString(16).padStart(2, '0')} (expected one of 08, 09, 0b, 0c, 0d, 0e)`);
  if (rank === 0) throw new DataFormatError(fileName, 'IDX rank 0: expected at least one dimension');
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, d) => view.getUint32(4 + 4 * d, false));
  return { kind, shape, headerBytes, totalBytes: headerBytes + elementCount(shape) * kind.bytes };
}

/**
 * The size an IDX stream declares, read from its first bytes (null while they are too few): the
 * bound for inflating a gzipped IDX file.
 */
export function idxDeclaredSize(head: Uint8Array, fileName: string): DeclaredSize | null {
  const h = readIdxHeader(head, fileName);
  return h && { bytes: h.totalBytes, by: `the IDX header (shape ${formatShape(h.shape)} of ${h.kind.dtype})` };
}

/**
 * Parses an (uncompressed) IDX file. `fileName` names the file in errors. Sizes are checked
 * against the bytes present before anything is allocated.
 *
 * @example
 * const labels = parseIdx(bytes, 't10k-labels-idx1-ubyte'); // { dtype: 'uint8', shape: [10000], data }
 */
export function parseIdx(data: Uint8Array | ArrayBuffer, fileName: string): IdxArray {
  const bytes = asBytes(data);
  if (bytes.length < 4) throw new DataFormatError(fileName, `truncated IDX file: ${bytes.length} bytes, shorter than the 4-byte magic`);
  const header = readIdxHeader(bytes, fileName);
  if (!header) throw new DataFormatError(fileName, `truncated IDX header: ${bytes.length} bytes, the ${bytes[3]} dimensions need ${4 + 4 * bytes[3]!}`);
  const { kind, shape, headerBytes, totalBytes: expected } = header;
  if (bytes.length < expected) {
    throw new DataFormatError(fileName, `truncated IDX data: shape ${formatShape(shape)} of ${kind.dtype} needs ${expected} bytes, the file has ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new DataFormatError(fileName, `${bytes.length - expected} unexpected bytes after the IDX data of shape ${formatShape(shape)} (${expected} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dtype: kind.dtype, shape, data: decodeBigEndian(view, headerBytes, (expected - headerBytes) / kind.bytes, kind.dtype) };
}

/**
 * Parses IDX bytes, raw or gzipped; gzip data is inflated no further than the size its IDX header
 * declares (+ slack), which must fit under `limits.maxBytes` (default 1 GiB).
 *
 * @example
 * const { gunzip } = await nodeDecompressors();
 * const images = decodeIdx(bytes, 'train-images-idx3-ubyte.gz', gunzip);
 */
export function decodeIdx(bytes: Uint8Array, fileName: string, gunzip: Decompress, limits?: DataLimits): IdxArray {
  if (!isGzip(bytes)) return parseIdx(bytes, fileName);
  return parseIdx(gunzipBounded(bytes, fileName, gunzip, { ...limits, declare: (head) => idxDeclaredSize(head, fileName) }), fileName);
}

function decodeBigEndian(view: DataView, offset: number, count: number, dtype: IdxDType): IdxArray['data'] {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + offset, count);
    case 'int8':
      return new Int8Array(view.buffer, view.byteOffset + offset, count);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/**
 * Builds a classification dataset from an IDX image file (uint8, shape [N, H, W] or [N, C, H, W])
 * and an IDX label file (uint8, shape [N]). Pixels are kept as bytes (divisor 255: values in [0, 1]); items get shape
 * [1, H, W] (or [C, H, W]) for NCHW convolutions.
 */
export function datasetFromIdx(
  images: IdxArray,
  labels: IdxArray,
  names: { images: string; labels: string; dataset: string },
  numClasses = 10,
): Dataset {
  if (images.dtype !== 'uint8') throw new DataFormatError(names.images, `images must be uint8, got ${images.dtype}`);
  if (images.shape.length !== 3 && images.shape.length !== 4) {
    throw new DataFormatError(names.images, `images must have shape [N, H, W] or [N, C, H, W], got ${formatShape(images.shape)}`);
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new DataFormatError(names.labels, `labels must be a uint8 vector, got ${labels.dtype} of shape ${formatShape(labels.shape)}`);
  }
  const n = images.shape[0]!;
  if (labels.shape[0] !== n) {
    throw new DataFormatError(names.labels, `${labels.shape[0]} labels for ${n} images in ${names.images}: the counts must match`);
  }
  const y = new Int32Array(labels.data.length);
  for (let i = 0; i < y.length; i++) {
    const label = labels.data[i]!;
    if (label >= numClasses) throw new DataFormatError(names.labels, `label ${label} at index ${i} is outside [0, ${numClasses})`);
    y[i] = label;
  }
  const x = images.data as Uint8Array; // the file's pixels, not copied
  const itemShape = images.shape.length === 3 ? [1, images.shape[1]!, images.shape[2]!] : images.shape.slice(1);
  return new Dataset(x, itemShape, y, numClasses, names.dataset, 255);
}
