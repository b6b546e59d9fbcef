/**
 * Mini-batches of a Dataset: seeded shuffling, batching, per-item transforms. The core works on
 * typed arrays (`arrays(epoch)`); `epoch(epoch)` wraps each batch in engine tensors, created
 * lazily one batch at a time so memory stays bounded.
 */
import { Tensor } from '../core/tensor.js';
import type { Dataset } from './dataset.js';
import { KeyedRandom, RANDOM_DOMAINS } from './random.js';
import type { Transform } from './transforms.js';

export interface DataLoaderOptions {
  batchSize: number;
  /** Visit items in a new seeded order each epoch (default true); false = dataset order. */
  shuffle?: boolean;
  /** Seed of the shuffle order and of random transforms (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false: keep it). */
  dropLast?: boolean;
  /** Applied to each item in order, after copying it out of the dataset (the dataset is never modified). */
  transforms?: readonly Transform[];
  /** Give x the shape [B, itemSize] (for MLPs) instead of [B, ...itemShape]. Default false. */
  flatten?: boolean;
}

/** A batch as typed arrays: x holds `shape` values, y one label per item, indices the dataset rows. */
export interface ArrayBatch {
  x: Float32Array;
  y: Int32Array;
  shape: number[];
  indices: Int32Array;
}

/** A batch as engine tensors (float32 x, int32 y). The caller disposes x and y. */
export interface TensorBatch {
  x: Tensor;
  y: Tensor;
  indices: Int32Array;
}

/**
 * Iterates a dataset in mini-batches. The order of epoch e depends only on (seed, e); the
 * augmentation of an item only on (seed, e, item index).
 *
 * @example
 * const loader = new DataLoader(train, { batchSize: 64, seed: 1, transforms: [randomHorizontalFlip()] });
 * for (let e = 0; e < epochs; e++) {
 *   for (const { x, y } of loader.epoch(e)) {
 *     scope(() => step(x, y));   // tensors made by the step are freed here
 *     x.dispose(); y.dispose();  // the batch itself is the caller's
 *   }
 * }
 */
export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly flatten: boolean;
  private readonly transforms: readonly Transform[];
  private readonly augmentRandom: KeyedRandom;
  private readonly shuffleRandom: KeyedRandom;

  constructor(
    readonly dataset: Dataset,
    options: DataLoaderOptions,
  ) {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, transforms = [], flatten = false } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(seed)) throw new RangeError(`DataLoader: seed must be an integer, got ${seed}`);
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.flatten = flatten;
    this.transforms = [...transforms];
    this.augmentRandom = new KeyedRandom(seed, RANDOM_DOMAINS.augmentation);
    this.shuffleRandom = new KeyedRandom(seed, RANDOM_DOMAINS.shuffle);
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Items per epoch (all of them, or the whole batches with dropLast). */
  get itemsPerEpoch(): number {
    return this.dropLast ? this.numBatches * this.batchSize : this.dataset.length;
  }

  /** The dataset indices of epoch `epoch`, in visiting order. */
  order(epoch: number): Int32Array {
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    if (!this.shuffle) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    this.shuffleRandom.reset(epoch, 0);
    return this.shuffleRandom.permutation(this.dataset.length);
  }

  /** Shape of x for a batch of `count` items. */
  batchShape(count: number): number[] {
    return this.flatten ? [count, this.dataset.itemSize] : [count, ...this.dataset.itemShape];
  }

  /** Copies the items `indices` (transformed for epoch `epoch`) into x and their labels into y. */
  fillBatch(indices: ArrayLike<number>, epoch: number, x: Float32Array, y: Int32Array): void {
    const size = this.dataset.itemSize;
    if (x.length < indices.length * size || y.length < indices.length) {
      throw new RangeError(`DataLoader.fillBatch: buffers hold ${x.length} values / ${y.length} labels, ${indices.length} items need ${indices.length * size} / ${indices.length}`);
    }
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j]!;
      if (!(i >= 0 && i < this.dataset.length)) throw new RangeError(`DataLoader.fillBatch: index ${i} is outside dataset '${this.dataset.name}' [0, ${this.dataset.length})`);
      const item = x.subarray(j * size, (j + 1) * size);
      this.dataset.copyItem(i, item);
      y[j] = this.dataset.y[i]!;
      if (this.transforms.length === 0) continue;
      this.augmentRandom.reset(epoch, i);
      for (const t of this.transforms) t.apply(item, this.dataset.itemShape, this.augmentRandom);
    }
  }

  /** The batches of epoch `epoch` as typed arrays (fresh arrays per batch). */
  *arrays(epoch: number): Generator<ArrayBatch> {
    for (const indices of this.batchIndices(epoch)) {
      const x = new Float32Array(indices.length * this.dataset.itemSize);
      const y = new Int32Array(indices.length);
      this.fillBatch(indices, epoch, x, y);
      yield { x, y, shape: this.batchShape(indices.length), indices };
    }
  }

  /**
   * The batches of epoch `epoch` as tensors: x float32 [B, ...itemShape] (or [B, itemSize] with
   * `flatten`), y int32 [B]. Each batch is allocated when the iteration reaches it; the caller
   * disposes it (or creates it inside a `scope`). `startBatch` skips the epoch's first batches
   * (resuming a run: the order depends only on seed and epoch).
   */
  *epoch(epoch: number, startBatch = 0): Generator<TensorBatch> {
    for (const indices of this.batchIndices(epoch, startBatch)) {
      // fillBatch writes every value and label: no zero-fill first.
      const x = Tensor.uninitialized(this.batchShape(indices.length), 'float32');
      const y = Tensor.uninitialized([indices.length], 'int32');
      // Views taken after both allocations: an allocation may grow (and move) arena memory.
      this.fillBatch(indices, epoch, x.data() as Float32Array, y.data() as Int32Array);
      yield { x, y, indices };
    }
  }

  private *batchIndices(epoch: number, startBatch = 0): Generator<Int32Array> {
    const order = this.order(epoch);
    for (let b = startBatch; b < this.numBatches; b++) {
      yield order.subarray(b * this.batchSize, Math.min(order.length, (b + 1) * this.batchSize));
    }
  }
}
