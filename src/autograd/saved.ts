/**
 * The save-for-backward chokepoint. Every value an op keeps for its backward pass becomes a
 * SavedSlot, created by `ForwardContext.save` and nowhere else. A slot knows which op, which
 * node, which named value and which module saved it; it runs the active pack hook at save time
 * and the unpack hook when backward reads it, checks that the tensor was not modified in place
 * in between, books its bytes in the memory ledger, and is released right after the backward
 * step that used it.
 *
 * Hooks (PyTorch's `saved_tensors_hooks`) are installed for a scope with `withSavedTensorHooks`;
 * activation compression (src/compress) is built on them.
 */
import { ledger } from '../core/ledger.js';
import type { Storage } from '../core/storage.js';
import { keep } from '../core/scope.js';
import type { Tensor } from '../core/tensor.js';

/** What a saved value is to its op; compression policies key on it. */
export type SaveRole =
  | 'input' // an op input kept as is (linear/conv input, norm input, ...)
  | 'output' // the op's own output (softmax, sigmoid, tanh, exp)
  | 'mask' // a 0/1 uint8 mask derived in forward (relu, leaky-relu, hardtanh)
  | 'index' // integer positions (max-pool argmax, embedding ids, class labels)
  | 'stats'; // small float statistics (norm mean / inverse std)

/**
 * A declared save of an op (OpDef.saves): its role plus hints the compression policy reads, so
 * that no policy has to know op names.
 */
export interface SaveSpec {
  readonly role: SaveRole;
  /** Must be stored exactly, never lossy (a loss's probabilities: its gradient is their small difference from one-hot). */
  readonly exact?: boolean;
  /** Quantization groups stay within one row of the last axis (the op normalizes rows: layer norm). */
  readonly group?: 'row';
}

/** A declared save as a SaveSpec (a bare role is a spec without hints). */
export function saveSpec(d: SaveRole | SaveSpec): SaveSpec {
  return typeof d === 'string' ? { role: d } : d;
}

/**
 * Books the storage of a value kept by reference as 'saved', once however many saves share it
 * (parameters never); returns the bytes booked by this call. `unbookSaved` is its inverse.
 */
export function bookSaved(t: Tensor, isParameter: boolean): number {
  if (isParameter || t.storage.savedRefs++ !== 0) return 0;
  t.storage.rebook('saved');
  return t.storage.byteLength;
}

export function unbookSaved(storage: Storage, isParameter: boolean): void {
  if (!isParameter && --storage.savedRefs === 0) storage.rebook(storage.category);
}

export interface SaveInfo {
  /** The op that saves (registry name). */
  readonly op: string;
  /** The value's name in the op's declared saves, e.g. 'x', 'mask'. */
  readonly name: string;
  readonly role: SaveRole;
  /** The declared hints (SaveSpec). */
  readonly exact: boolean;
  readonly group: 'row' | undefined;
  /** The autograd node this slot belongs to. */
  readonly nodeId: number;
  /** Path of the nn.Module being called when the value was saved ('' outside modules). */
  readonly module: string;
  /** True when the storage belongs to a parameter (never compressed, never counted as saved). */
  readonly isParameter: boolean;
  readonly storageId: number;
  readonly version: number;
}

export interface SavedTensorHooks<P = unknown> {
  /** Called once per save; returns what the slot keeps instead of the tensor. */
  pack(t: Tensor, info: SaveInfo): P;
  /** Called when backward needs the value; must return a tensor equal in shape and dtype. */
  unpack(packed: P, info: SaveInfo): Tensor;
  /** Bytes the packed value holds (for per-op accounting); default: 0. */
  packedBytes?(packed: P, info: SaveInfo): number;
  /** Called when the slot is released; frees whatever `pack` allocated. */
  release?(packed: P, info: SaveInfo): void;
  /** Called just before the saving node's backward runs, with its output gradients (null: none arrived). */
  observe?(packed: P, info: SaveInfo, gradOutputs: readonly (Tensor | null)[]): void;
}

const hookStack: SavedTensorHooks[] = [];

/** Runs `fn` with `hooks` applied to every value saved for backward inside it. */
export function withSavedTensorHooks<T>(hooks: SavedTensorHooks<any>, fn: () => T): T {
  hookStack.push(hooks);
  try {
    return fn();
  } finally {
    hookStack.pop();
  }
}

const moduleStack: string[] = [];

/** Runs `fn` with `path` as the current module path (set by nn.Module calls). */
export function withModulePath<T>(path: string, fn: () => T): T {
  moduleStack.push(path);
  try {
    return fn();
  } finally {
    moduleStack.pop();
  }
}

export function currentModulePath(): string {
  return moduleStack[moduleStack.length - 1] ?? '';
}

/** Live slots, for reports and leak tests. */
let liveSlots = 0;
export function liveSavedSlots(): number {
  return liveSlots;
}

export class SavedSlot {
  readonly info: SaveInfo;
  private readonly hooks: SavedTensorHooks | undefined;
  private packed: unknown;
  private readonly storage: Storage;
  private readonly shape: readonly number[];
  /** The saved tensor's place in the graph, restored on unpack (for higher-order gradients). */
  private gradFn: Tensor['gradFn'];
  private readonly leaf: Tensor | null;
  /** Id of the tensor that was saved (to recognise an op's own outputs). */
  readonly tensorId: number;
  /** Bytes booked for this slot in the per-op saved ledger. */
  readonly bytes: number;
  private released = false;

  constructor(t: Tensor, op: string, name: string, spec: SaveSpec, nodeId: number) {
    t.assertAlive(`${op}: save '${name}'`);
    this.storage = t.storage;
    this.shape = t.shape;
    this.gradFn = t.gradFn;
    this.tensorId = t.id;
    this.leaf = t.requiresGrad && !t.gradFn ? (t.autogradLeaf ?? t) : null;
    this.info = {
      op,
      name,
      role: spec.role,
      exact: spec.exact ?? false,
      group: spec.group,
      nodeId,
      module: currentModulePath(),
      isParameter: t.storage.category === 'parameter',
      storageId: t.storage.id,
      version: t.storage.version,
    };
    this.hooks = hookStack[hookStack.length - 1];
    liveSlots++;
    if (this.hooks) {
      this.packed = this.hooks.pack(t, this.info);
      this.bytes = this.hooks.packedBytes?.(this.packed, this.info) ?? 0;
    } else {
      // No hook: keep a view of the same storage. Its bytes become 'saved' once, however many
      // slots share the storage (dedup by storage identity); parameters are never counted.
      this.packed = keep(t.view(t.shape, t.strides, t.offset)); // owned by the slot, not by any scope
      this.bytes = bookSaved(t, this.info.isParameter);
    }
    ledger.addSavedOp(op, this.bytes);
  }

  /** The saved value, unpacked. The caller owns the returned tensor. */
  get(): Tensor {
    if (this.released) {
      throw new Error(
        `${this.info.op}: saved value '${this.info.name}' was already freed by an earlier backward pass; ` +
          `call backward with { retainGraph: true } to backpropagate through the graph twice`,
      );
    }
    if (this.storage.version !== this.info.version) {
      throw new Error(
        `${this.info.op}: a tensor ${JSON.stringify(this.shape)} saved for backward as '${this.info.name}' ` +
          `was modified in place after it was saved (version ${this.storage.version}, saved at version ${this.info.version})`,
      );
    }
    let out: Tensor;
    if (this.hooks) out = this.hooks.unpack(this.packed, this.info);
    else {
      const t = this.packed as Tensor;
      out = t.view(t.shape, t.strides, t.offset);
    }
    if (this.gradFn || this.leaf) {
      out.requiresGrad = true;
      out.autogradLeaf = this.leaf;
      // A borrowed edge: the node is kept alive by the graph, not by this view.
      out.gradFn = this.gradFn && { node: this.gradFn.node, index: this.gradFn.index, borrowed: true };
    }
    return out;
  }

  /** Shows the node's output gradients to the hook (activation compression measures sensitivity with them). */
  observe(gradOutputs: readonly (Tensor | null)[]): void {
    if (!this.released) this.hooks?.observe?.(this.packed, this.info, gradOutputs);
  }

  /** Links a saved output to the node that produced it (known only after the op's forward). */
  bindOutput(edge: NonNullable<Tensor['gradFn']>): void {
    this.gradFn = { node: edge.node, index: edge.index, borrowed: true };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    liveSlots--;
    ledger.removeSavedOp(this.info.op, this.bytes);
    if (this.hooks) {
      this.hooks.release?.(this.packed, this.info);
    } else {
      const t = this.packed as Tensor;
      unbookSaved(t.storage, this.info.isParameter);
      t.dispose();
    }
    this.packed = undefined;
  }
}
