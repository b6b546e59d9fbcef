/**
 * Classification datasets: N items of one shape (e.g. [1, 28, 28] for MNIST, [3, 32, 32] for
 * CIFAR, [d] for feature vectors) stored back to back in one typed array, with int32 labels.
 * Images keep their file's 8-bit pixels (a Uint8Array with `divisor` 255, a quarter of the float
 * size) and are converted to float32 one batch at a time (`copyItem`, `values`); feature data is
 * stored as float32 with divisor 1. Procedural sets (the synthetic shapes) instead compute each
 * item when it is read (`ItemGenerator`), so they hold no pixels at all.
 */

/** What a dataset stores its values in. */
export type DatasetValues = Float32Array | Uint8Array;

/**
 * Items computed on demand: `render(i, out)` writes the stored values of item `i` (a pure
 * function of i) into `out`, an array of `storage`'s type and the item's size.
 *
 * @example
 * // 1,000 items of 4 features, drawn when read: the dataset stores only the labels.
 * const waves: ItemGenerator = { storage: 'float32', render: (i, out) => { for (let k = 0; k < 4; k++) out[k] = Math.sin(i + k); } };
 * const data = new Dataset(waves, [4], Int32Array.from({ length: 1000 }, (_, i) => i % 2), 2, 'waves');
 */
export interface ItemGenerator {
  readonly storage: 'uint8' | 'float32';
  render(i: number, out: DatasetValues): void;
}

interface GeneratedItems {
  generator: ItemGenerator;
  /** One item's stored values (reused by every read). */
  scratch: DatasetValues;
}

/** Row-major element count of one item. */
export function itemSizeOf(itemShape: readonly number[]): number {
  let n = 1;
  for (const d of itemShape) {
    if (!Number.isInteger(d) || d <= 0) throw new RangeError(`dataset: item shape [${itemShape.join(', ')}] must have positive integer dimensions`);
    n *= d;
  }
  return n;
}

/**
 * A labelled dataset held in memory.
 *
 * @example
 * const all = await loadMnist('../shared/data/mnist-t10k', { split: 'all' });
 * const [train, test] = all.split(8000);       // first 8,000 / last 2,000
 * train.item(0);                               // { x: Float32Array(784), y: 7 }
 * train.x;                                     // Uint8Array(6272000): the file's pixels, divisor 255
 */
export class Dataset {
  /** Number of items. */
  readonly length: number;
  /** Elements per item (product of itemShape). */
  readonly itemSize: number;
  readonly itemShape: readonly number[];
  private stored: DatasetValues | null;
  private readonly generated: GeneratedItems | null;

  constructor(
    /** All items back to back, row-major (item i is x[i*itemSize, (i+1)*itemSize)), or their generator. */
    x: DatasetValues | ItemGenerator,
    itemShape: readonly number[],
    /** Label of each item, in [0, numClasses). */
    readonly y: Int32Array,
    readonly numClasses: number,
    readonly name: string,
    /** An item's float32 values are its stored values divided by this (255 for 8-bit pixels). */
    readonly divisor = 1,
  ) {
    if (!(divisor > 0)) throw new RangeError(`dataset '${name}': divisor must be positive, got ${divisor}`);
    this.itemShape = Object.freeze([...itemShape]);
    this.itemSize = itemSizeOf(itemShape);
    this.length = y.length;
    if (!ArrayBuffer.isView(x)) {
      this.stored = null;
      const scratch = x.storage === 'uint8' ? new Uint8Array(this.itemSize) : new Float32Array(this.itemSize);
      this.generated = { generator: x, scratch };
    } else {
      this.stored = x;
      this.generated = null;
    }
    if (this.stored && this.stored.length !== this.length * this.itemSize) {
      throw new RangeError(
        `dataset '${name}': ${this.stored.length} values do not hold ${this.length} items of shape [${itemShape.join(', ')}] (${this.length * this.itemSize} values)`,
      );
    }
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`dataset '${name}': numClasses must be a positive integer, got ${numClasses}`);
    for (let i = 0; i < y.length; i++) {
      const label = y[i]!;
      if (label < 0 || label >= numClasses) throw new RangeError(`dataset '${name}': label ${label} of item ${i} is outside [0, ${numClasses})`);
    }
  }

  /** Items [start, end) as a new Dataset sharing this one's memory (no copy). */
  subset(start: number, end: number = this.length, name = `${this.name}[${start}:${end}]`): Dataset {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.length || start > end) {
      throw new RangeError(`dataset '${this.name}': subset(${start}, ${end}) is outside [0, ${this.length}]`);
    }
    if (this.generated) {
      const { generator } = this.generated;
      const shifted: ItemGenerator = { storage: generator.storage, render: (i, out) => generator.render(start + i, out) };
      return new Dataset(shifted, this.itemShape, this.y.subarray(start, end), this.numClasses, name, this.divisor);
    }
    return new Dataset(this.stored!.subarray(start * this.itemSize, end * this.itemSize), this.itemShape, this.y.subarray(start, end), this.numClasses, name, this.divisor);
  }

  /**
   * All items' stored values back to back. A generated dataset computes them here, once (kept
   * afterwards): prefer `copyItem`/`values`, which never hold more than they return.
   */
  get x(): DatasetValues {
    if (!this.stored) {
      const out = this.storageType() === 'uint8' ? new Uint8Array(this.length * this.itemSize) : new Float32Array(this.length * this.itemSize);
      for (let i = 0; i < this.length; i++) out.set(this.storedItem(i), i * this.itemSize);
      this.stored = out;
    }
    return this.stored;
  }

  private storageType(): 'uint8' | 'float32' {
    return this.generated ? this.generated.generator.storage : this.stored instanceof Uint8Array ? 'uint8' : 'float32';
  }

  /** Item i's stored values: a view of the array, or the generator's output (valid until the next read). */
  private storedItem(i: number): DatasetValues {
    if (this.stored) return this.stored.subarray(i * this.itemSize, (i + 1) * this.itemSize);
    const g = this.generated!;
    g.generator.render(i, g.scratch);
    return g.scratch;
  }

  /** The first `at` items and the rest, in order (no copy). */
  split(at: number): [Dataset, Dataset] {
    return [this.subset(0, at), this.subset(at, this.length)];
  }

  /** The items at `indices`, copied, in that order. */
  select(indices: ArrayLike<number>, name = `${this.name}[selection]`): Dataset {
    const x = this.storageType() === 'uint8' ? new Uint8Array(indices.length * this.itemSize) : new Float32Array(indices.length * this.itemSize);
    const y = new Int32Array(indices.length);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j]!;
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`dataset '${this.name}': index ${i} is outside [0, ${this.length})`);
      x.set(this.storedItem(i), j * this.itemSize);
      y[j] = this.y[i]!;
    }
    return new Dataset(x, this.itemShape, y, this.numClasses, name, this.divisor);
  }

  /** Item i: its float32 values (a view when stored as float32, else a converted copy) and its label. */
  item(i: number): { x: Float32Array; y: number } {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`dataset '${this.name}': item ${i} is outside [0, ${this.length})`);
    return { x: this.values(i, i + 1), y: this.y[i]! };
  }

  /** Whether items are stored as their float32 values (no conversion). */
  get storesFloats(): boolean {
    return this.storageType() === 'float32' && this.divisor === 1;
  }

  /** The float32 values of items [start, end) back to back: a view when stored as float32, else a converted copy. */
  values(start = 0, end = this.length): Float32Array {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.length || start > end) {
      throw new RangeError(`dataset '${this.name}': values(${start}, ${end}) is outside [0, ${this.length}]`);
    }
    if (this.stored) {
      const stored = this.stored.subarray(start * this.itemSize, end * this.itemSize);
      if (this.storesFloats) return stored as Float32Array;
      const out = new Float32Array(stored.length);
      for (let k = 0; k < out.length; k++) out[k] = stored[k]! / this.divisor;
      return out;
    }
    const out = new Float32Array((end - start) * this.itemSize);
    for (let i = start; i < end; i++) this.copyItem(i, out.subarray((i - start) * this.itemSize));
    return out;
  }

  /** Writes the float32 values of item i into `out` (at least itemSize long). */
  copyItem(i: number, out: Float32Array): void {
    const stored = this.storedItem(i);
    if (this.storesFloats) out.set(stored);
    else for (let k = 0; k < stored.length; k++) out[k] = stored[k]! / this.divisor;
  }

  /** How many items carry each label. */
  classCounts(): Int32Array {
    const counts = new Int32Array(this.numClasses);
    for (let i = 0; i < this.length; i++) counts[this.y[i]!]!++;
    return counts;
  }

  /**
   * Per-channel mean and standard deviation over all items (population std). Channels are the
   * first axis of CHW image items; an item of rank 1 (a feature vector) is one channel. Feeds
   * `normalize`.
   */
  channelStats(): { mean: number[]; std: number[] } {
    const channels = this.itemShape.length > 1 ? this.itemShape[0]! : 1;
    const plane = this.itemSize / channels;
    const sum = new Float64Array(channels);
    const sumSq = new Float64Array(channels);
    for (let i = 0; i < this.length; i++) {
      const item = this.storedItem(i);
      for (let c = 0; c < channels; c++) {
        const base = c * plane;
        let s = 0, s2 = 0;
        for (let k = 0; k < plane; k++) {
          const v = Math.fround(item[base + k]! / this.divisor); // the float32 value an item holds
          s += v;
          s2 += v * v;
        }
        sum[c]! += s;
        sumSq[c]! += s2;
      }
    }
    const count = this.length * plane;
    const mean = Array.from(sum, (s) => s / count);
    const std = Array.from(sumSq, (s2, c) => Math.sqrt(Math.max(0, s2 / count - mean[c]! ** 2)));
    return { mean, std };
  }
}

/** The items of several datasets of the same item shape and class count, one after another (copied). */
export function concatDatasets(parts: readonly Dataset[], name: string): Dataset {
  if (parts.length === 0) throw new RangeError(`concatDatasets('${name}'): no datasets given`);
  const first = parts[0]!;
  for (const d of parts) {
    if (d.itemShape.join(',') !== first.itemShape.join(',') || d.numClasses !== first.numClasses) {
      throw new RangeError(
        `concatDatasets('${name}'): '${d.name}' has items [${d.itemShape.join(', ')}] / ${d.numClasses} classes, '${first.name}' has [${first.itemShape.join(', ')}] / ${first.numClasses}`,
      );
    }
  }
  const total = parts.reduce((n, d) => n + d.length, 0);
  // Stored values are kept when every part stores them alike; otherwise all become float32.
  const same = parts.every((d) => d.x.constructor === first.x.constructor && d.divisor === first.divisor);
  const x = same ? new (first.x.constructor as new (n: number) => DatasetValues)(total * first.itemSize) : new Float32Array(total * first.itemSize);
  const y = new Int32Array(total);
  let at = 0;
  for (const d of parts) {
    x.set(same ? d.x : d.values(), at * first.itemSize);
    y.set(d.y, at);
    at += d.length;
  }
  return new Dataset(x, first.itemShape, y, first.numClasses, name, same ? first.divisor : 1);
}
