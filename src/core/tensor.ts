import { ArenaLimitError } from './arena.js';
import { DTYPES, type AnyTypedArray, type DType } from './dtype.js';
import type { Category } from './ledger.js';
import { contiguousStrides, copyShape, fmt, numel, type Shape } from './shape.js';
import { trackTensor } from './scope.js';
import { Storage } from './storage.js';

let nextTensorId = 1;

/** Where a non-leaf tensor came from: output `index` of autograd node `node`. */
export interface GradEdge {
  node: { readonly id: number; readonly opName: string; ref(): void; unref(): void };
  index: number;
  /** True when this tensor does not own a reference to the node (unpacked saved values). */
  borrowed?: boolean;
}

/**
 * An n-dimensional view (shape, strides, offset, dtype) over a Storage, plus autograd metadata.
 * Views (reshape, transpose, slice) share the storage; `dispose()` drops this view's reference.
 * Ops are functions over tensors (src/ops), not methods, so that the core does not depend on them.
 */
export class Tensor {
  readonly isTensor = true;
  readonly id = nextTensorId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradEdge | null = null;
  /** For a view standing in for a leaf (an unpacked saved value): the leaf that receives its gradient. */
  autogradLeaf: Tensor | null = null;
  /** Optional name (parameters get their state-dict path): appears in error messages and reports. */
  name = '';
  /** The scope that disposes this tensor when it closes (set by core/scope.ts), null outside scopes or once kept. */
  ownerScope: Set<Tensor> | null = null;
  private _disposed = false;

  constructor(
    readonly storage: Storage,
    shape: Shape,
    strides?: Shape,
    readonly offset = 0,
  ) {
    // Another tensor's shape or strides (frozen) are shared as they are; anything else is copied.
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze(copyShape(shape));
    this.strides = strides ? (Object.isFrozen(strides) ? strides : Object.freeze(copyShape(strides))) : Object.freeze(contiguousStrides(shape));
    this.size = numel(shape);
    trackTensor(this);
  }

  /** A new tensor with a fresh, zero-filled storage. */
  static empty(shape: Shape, dtype: DType = 'float32', category: Category = 'activation'): Tensor {
    return Tensor.allocate(shape, dtype, category, true);
  }

  /**
   * A new tensor whose elements hold whatever the reused memory held: only for outputs that the
   * caller overwrites entirely before anyone reads them (it saves the zero-filling pass of `empty`).
   *
   * @example
   * ```ts
   * const y = Tensor.uninitialized(x.shape, x.dtype);
   * kernels(x.dtype).reluMask(x, y, null, 0); // writes every element of y
   * ```
   */
  static uninitialized(shape: Shape, dtype: DType = 'float32', category: Category = 'activation'): Tensor {
    return Tensor.allocate(shape, dtype, category, false);
  }

  private static allocate(shape: Shape, dtype: DType, category: Category, zeroed: boolean): Tensor {
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i]!;
      if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape ${fmt(shape)}: dimensions must be non-negative integers`);
    }
    let storage: Storage;
    try {
      storage = new Storage(dtype, numel(shape), category, zeroed);
    } catch (e) {
      if (e instanceof ArenaLimitError) throw e.describing(`${category} tensor ${dtype} ${fmt(shape)} (${(numel(shape) * DTYPES[dtype].bytes / 2 ** 20).toFixed(1)} MiB)`);
      throw e;
    }
    return new Tensor(storage, shape);
  }

  get dtype(): DType {
    return this.storage.dtype;
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  /** Byte offset in the arena of element [0, 0, ...] (for wasm kernels). */
  get ptr(): number {
    return this.storage.ptr + this.offset * DTYPES[this.dtype].bytes;
  }
  get byteLength(): number {
    return this.size * DTYPES[this.dtype].bytes;
  }

  isContiguous(): boolean {
    if (this.contiguous === undefined) {
      let expect = 1;
      this.contiguous = true;
      for (let i = this.shape.length - 1; i >= 0; i--) {
        if (this.shape[i] !== 1 && this.strides[i] !== expect) this.contiguous = false;
        expect *= this.shape[i]!;
      }
    }
    return this.contiguous;
  }
  /** isContiguous(), computed on first use (shape and strides never change). */
  private contiguous: boolean | undefined;

  /**
   * The elements as a typed array over arena memory, without a copy. Only for contiguous tensors;
   * valid until the next allocation (memory may grow), so use it immediately.
   */
  data(): AnyTypedArray {
    this.assertAlive('data');
    if (!this.isContiguous()) throw new Error(`tensor #${this.id} ${fmt(this.shape)} is a strided view: call contiguous() first`);
    return new DTYPES[this.dtype].ctor(this.storage.view().buffer, this.ptr, this.size);
  }

  /** A copy of the elements in row-major order, as a plain array of numbers. */
  toArray(): number[] {
    return Array.from(this.values());
  }

  /** A copy of the elements in row-major order, as a typed array that outlives the tensor. */
  values(): AnyTypedArray {
    this.assertAlive('values');
    if (this.isContiguous()) return this.data().slice();
    const out = new DTYPES[this.dtype].ctor(new ArrayBuffer(this.size * DTYPES[this.dtype].bytes), 0, this.size);
    const src = this.storage.view();
    const idx = new Array<number>(this.rank).fill(0);
    for (let i = 0; i < this.size; i++) {
      let off = this.offset;
      for (let d = 0; d < this.rank; d++) off += idx[d]! * this.strides[d]!;
      out[i] = src[off]!;
      for (let d = this.rank - 1; d >= 0; d--) {
        if (++idx[d]! < this.shape[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  /** The single element of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, shape ${fmt(this.shape)}`);
    return this.values()[0]!;
  }

  /** A new view over the same storage (shares memory; retains the storage). Default: contiguous strides, same offset. */
  view(shape: Shape = this.shape, strides?: Shape, offset = this.offset): Tensor {
    this.assertAlive('view');
    this.storage.retain();
    return new Tensor(this.storage, shape, strides, offset);
  }

  /** A view that is the same value to autograd: gradients flow through it to this tensor's source. */
  alias(): Tensor {
    const v = this.view(this.shape, this.strides, this.offset); // keep the strides: a broadcast view has zeros
    v.requiresGrad = this.requiresGrad;
    if (this.gradFn) {
      this.gradFn.node.ref();
      v.gradFn = { node: this.gradFn.node, index: this.gradFn.index };
    } else if (this.requiresGrad) v.autogradLeaf = this.autogradLeaf ?? this;
    return v;
  }

  /** Marks an in-place write: autograd uses it to detect modified saved values. */
  bumpVersion(): void {
    this.storage.version++;
  }

  /** Drops this view's reference to its storage (and to its gradient). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.ownerScope?.delete(this);
    this.ownerScope = null;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this.gradFn && !this.gradFn.borrowed) this.gradFn.node.unref();
    this.gradFn = null;
  }

  assertAlive(what: string): void {
    if (this._disposed) throw new Error(`${what}: tensor #${this.id}${this.name ? ` '${this.name}'` : ''} ${fmt(this.shape)} was disposed`);
  }

  toString(): string {
    const head = this.values().slice(0, 8);
    return `Tensor(${fmt(this.shape)}, ${this.dtype}, [${Array.from(head).map((v) => +v.toFixed(4)).join(', ')}${this.size > 8 ? ', ...' : ''}])`;
  }
}

/** Allocates a contiguous tensor and fills it from `values` (copied). */
/** Tensors whose values their owner gave to the op they are passed to (see `donate`). */
const donated = new WeakSet<Tensor>();

/**
 * Gives `t`'s values to the op it is passed to: the caller never reads `t` again, so an op may
 * write an elementwise output over it instead of allocating (see `reuseDonated`). Returns `t`.
 */
export function donate(t: Tensor): Tensor {
  donated.add(t);
  return t;
}

/**
 * For an op writing an output of `t`'s shape and `dtype` elementwise from `t`: a view of `t`'s
 * storage to write it into, when `t` was donated and no other view or saved slot shares those
 * bytes; null otherwise (then allocate). The output is booked as an activation.
 */
export function reuseDonated(t: Tensor, dtype: DType): Tensor | null {
  const s = t.storage;
  if (!donated.has(t) || !s.exclusive || t.dtype !== dtype || t.offset !== 0 || s.length !== t.size || !t.isContiguous()) return null;
  s.rebook('activation');
  return t.view();
}

export function fromValues(values: ArrayLike<number>, shape: Shape, dtype: DType = 'float32', category: Category = 'activation'): Tensor {
  if (values.length !== numel(shape)) {
    throw new RangeError(`tensor: ${values.length} values do not fill shape ${fmt(shape)} (${numel(shape)} elements)`);
  }
  const t = Tensor.empty(shape, dtype, category);
  (t.data() as AnyTypedArray).set(values as ArrayLike<number>);
  return t;
}
