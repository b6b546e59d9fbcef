/**
 * Per-item transforms on typed arrays (items are CHW images or feature vectors). Random
 * transforms draw from a `KeyedRandom` that the DataLoader resets to (epoch, item index): the
 * augmentation of an item is the same whatever the batch size or shuffle order, and the same
 * again for the same seed.
 */
import type { KeyedRandom } from './random.js';

/** A transform of one item, in place. `shape` is the item shape ([C, H, W] for images). */
export interface Transform {
  readonly name: string;
  apply(item: Float32Array, shape: readonly number[], random: KeyedRandom): void;
}

function imageDims(shape: readonly number[], who: string): [number, number, number] {
  if (shape.length !== 3) throw new RangeError(`${who}: needs image items [C, H, W], got [${shape.join(', ')}]`);
  return shape as [number, number, number];
}

/** Mirrors each row of a CHW image (x -> W-1-x), in place. */
export function flipHorizontal(item: Float32Array, shape: readonly number[]): void {
  const [c, h, w] = imageDims(shape, 'flipHorizontal');
  for (let row = 0; row < c * h; row++) {
    const base = row * w;
    for (let i = 0, j = w - 1; i < j; i++, j--) {
      const t = item[base + i]!;
      item[base + i] = item[base + j]!;
      item[base + j] = t;
    }
  }
}

/**
 * Moves a CHW image by (dx, dy) pixels (positive = right/down), in place, filling the uncovered
 * border with `fill`: the crop at offset (p - dx, p - dy) of the image padded by p on every side.
 * `scratch` must hold at least one image.
 */
export function shiftImage(item: Float32Array, shape: readonly number[], dx: number, dy: number, fill: number, scratch: Float32Array): void {
  const [c, h, w] = imageDims(shape, 'shiftImage');
  const size = c * h * w;
  if (scratch.length < size) throw new RangeError(`shiftImage: scratch holds ${scratch.length} values, the image has ${size}`);
  scratch.set(item.subarray(0, size));
  item.fill(fill, 0, size);
  const x0 = Math.max(0, dx), x1 = Math.min(w, w + dx);
  const y0 = Math.max(0, dy), y1 = Math.min(h, h + dy);
  if (x0 >= x1 || y0 >= y1) return;
  for (let ch = 0; ch < c; ch++) {
    for (let y = y0; y < y1; y++) {
      const dst = (ch * h + y) * w;
      const src = (ch * h + y - dy) * w - dx;
      for (let x = x0; x < x1; x++) item[dst + x] = scratch[src + x]!;
    }
  }
}

/**
 * Subtracts a per-channel mean and divides by a per-channel std (channels on the first item
 * axis; a single value applies to every element).
 *
 * @example
 * const { mean, std } = train.channelStats();
 * new DataLoader(train, { batchSize: 64, transforms: [normalize(mean, std)] });
 */
export function normalize(mean: readonly number[] | number, std: readonly number[] | number): Transform {
  const means = typeof mean === 'number' ? [mean] : [...mean];
  const stds = typeof std === 'number' ? [std] : [...std];
  if (means.length !== stds.length) throw new RangeError(`normalize: ${means.length} means but ${stds.length} stds`);
  for (const s of stds) if (!(s > 0)) throw new RangeError(`normalize: std must be positive, got ${s}`);
  return {
    name: 'normalize',
    apply(item, shape) {
      const channels = means.length === 1 ? 1 : shape.length > 1 ? shape[0]! : 1;
      if (channels !== means.length) throw new RangeError(`normalize: ${means.length} channel statistics for items [${shape.join(', ')}] with ${channels} channels`);
      const plane = item.length / channels;
      for (let c = 0; c < channels; c++) {
        const m = means[c]!, inv = 1 / stds[c]!;
        for (let k = c * plane; k < (c + 1) * plane; k++) item[k] = (item[k]! - m) * inv;
      }
    },
  };
}

/**
 * Random crop of the image zero-padded by `padding` on each side, back to the original size
 * (the CIFAR recipe: padding 4); `fill` is the padding value.
 */
export function randomCrop(padding: number, fill = 0): Transform {
  if (!Number.isInteger(padding) || padding < 0) throw new RangeError(`randomCrop: padding must be a non-negative integer, got ${padding}`);
  let scratch = new Float32Array(0);
  return {
    name: 'randomCrop',
    apply(item, shape, random) {
      if (scratch.length < item.length) scratch = new Float32Array(item.length);
      const dx = padding - random.int(2 * padding + 1);
      const dy = padding - random.int(2 * padding + 1);
      shiftImage(item, shape, dx, dy, fill, scratch);
    },
  };
}

/** Mirrors the image left-right with probability `p` (default 0.5). */
export function randomHorizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`randomHorizontalFlip: p must be in [0, 1], got ${p}`);
  return {
    name: 'randomHorizontalFlip',
    apply(item, shape, random) {
      if (random.uniform() < p) flipHorizontal(item, shape);
    },
  };
}
