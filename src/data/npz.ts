/**
 * NumPy .npz archives (a zip of .npy files, as np.savez / np.savez_compressed write them) and
 * datasets built from their arrays. Pure: the caller supplies the raw-deflate function.
 */
import { asBytes } from '../util/bytes.js';
import { Dataset } from './dataset.js';
import { clip, DataFormatError, formatShape } from './errors.js';
import { parseNpy, type NpyArray } from './npy.js';
import type { DataLimits } from './inflate.js';
import { readZip, type InflateRaw } from './zip.js';

/**
 * Parses an .npz archive into its arrays, keyed by name without the '.npy' suffix. Entries are
 * inflated no further than the sizes the zip directory declares, which must fit under
 * `limits.maxBytes` (default 1 GiB) together.
 *
 * @example
 * const { inflateRaw } = await nodeDecompressors();
 * const arrays = parseNpz(bytes, 'mnist.npz', inflateRaw);
 * arrays.get('x_train'); // { dtype: 'uint8', shape: [60000, 28, 28], data }
 */
export function parseNpz(data: Uint8Array | ArrayBuffer, fileName: string, inflateRaw: InflateRaw, limits?: DataLimits): Map<string, NpyArray> {
  const bytes = asBytes(data);
  const arrays = new Map<string, NpyArray>();
  for (const [entryName, data] of readZip(bytes, fileName, inflateRaw, limits)) {
    if (!entryName.endsWith('.npy')) continue; // npz archives hold only .npy files; skip stray metadata
    arrays.set(entryName.slice(0, -4), parseNpy(data, `${fileName}:${clip(entryName, 80)}`));
  }
  return arrays;
}

/** How to turn two arrays (features/images and labels) into a Dataset. */
export interface ArrayDatasetOptions {
  /** Name of the dataset (for messages and reports). */
  name: string;
  /** Number of classes; default max label + 1. */
  numClasses?: number;
  /** Images stored [N, H, W, C] (Keras style) are transposed to [N, C, H, W]. Default false. */
  channelsLast?: boolean;
  /** Multiplier applied to x; default 1/255 for uint8 data (pixels to [0, 1]) and 1 otherwise. */
  scale?: number;
  /** Names of the x and y sources, for error messages. */
  xSource?: string;
  ySource?: string;
}

/**
 * A Dataset from an x array of shape [N, ...] and an integer label array of shape [N].
 * Rank-2 x gives feature items [d]; rank-3 x ([N, H, W]) gives one-channel images [1, H, W];
 * rank-4 x is taken as [N, C, H, W] (or [N, H, W, C] with `channelsLast`).
 */
export function datasetFromArrays(xArray: NpyArray, yArray: NpyArray, options: ArrayDatasetOptions): Dataset {
  const xSource = options.xSource ?? `${options.name} x`;
  const ySource = options.ySource ?? `${options.name} y`;
  if (xArray.shape.length < 2 || xArray.shape.length > 4) throw new DataFormatError(xSource, `x must have rank 2 to 4 ([N, ...]), got shape ${formatShape(xArray.shape, '(', ')')}`);
  if (yArray.shape.length !== 1) throw new DataFormatError(ySource, `labels must be a vector [N], got shape ${formatShape(yArray.shape, '(', ')')}`);
  if (yArray.dtype === 'float32' || yArray.dtype === 'float64') throw new DataFormatError(ySource, `labels must be integers, got ${yArray.dtype}`);
  const n = xArray.shape[0]!;
  if (yArray.shape[0] !== n) throw new DataFormatError(ySource, `${yArray.shape[0]} labels for ${n} items in ${xSource}: the counts must match`);

  const y = Int32Array.from(yArray.data);
  let maxLabel = -1;
  for (let i = 0; i < y.length; i++) {
    if (y[i]! < 0) throw new DataFormatError(ySource, `negative label ${y[i]} at index ${i}`);
    maxLabel = Math.max(maxLabel, y[i]!);
  }
  const numClasses = options.numClasses ?? Math.max(1, maxLabel + 1);
  if (maxLabel >= numClasses) throw new DataFormatError(ySource, `label ${maxLabel} is outside [0, ${numClasses})`);

  const scale = options.scale ?? (xArray.dtype === 'uint8' ? 1 / 255 : 1);
  const rest = xArray.shape.slice(1);
  let itemShape: number[];
  let x: Float32Array;
  if (rest.length === 3 && options.channelsLast) {
    const [h, w, c] = rest as [number, number, number];
    itemShape = [c, h, w];
    x = new Float32Array(xArray.data.length);
    const plane = h * w;
    for (let i = 0; i < n; i++) {
      const base = i * c * plane;
      for (let p = 0; p < plane; p++) for (let ch = 0; ch < c; ch++) x[base + ch * plane + p] = xArray.data[base + p * c + ch]! * scale;
    }
  } else {
    itemShape = rest.length === 2 ? [1, ...rest] : rest;
    x = new Float32Array(xArray.data.length);
    for (let i = 0; i < x.length; i++) x[i] = xArray.data[i]! * scale;
  }
  return new Dataset(x, itemShape, y, numClasses, options.name);
}

/**
 * The dataset of arrays `x` and `y` (names set by options.x / options.y) of a parsed .npz; errors
 * name `file` and list the arrays it has.
 *
 * @example
 * const train = datasetFromNpz(parseNpz(bytes, 'mnist.npz', inflateRaw), 'mnist.npz', { x: 'x_train', y: 'y_train' });
 */
export function datasetFromNpz(arrays: Map<string, NpyArray>, file: string, options: { x?: string; y?: string } & Partial<ArrayDatasetOptions> = {}): Dataset {
  const xKey = options.x ?? 'x';
  const yKey = options.y ?? 'y';
  const available = [...arrays.keys()].join(', ') || 'none';
  const x = arrays.get(xKey);
  const y = arrays.get(yKey);
  if (!x) throw new DataFormatError(file, `no array '${xKey}' (arrays: ${available})`);
  if (!y) throw new DataFormatError(file, `no array '${yKey}' (arrays: ${available})`);
  return datasetFromArrays(x, y, { ...options, name: options.name ?? `${file}:${xKey}`, xSource: `${file}:${xKey}.npy`, ySource: `${file}:${yKey}.npy` });
}
