import type { Tensor } from '../core/tensor.js';
import type { OpDef, TensorMeta } from '../ops/registry.js';
import type { SavedSlot } from './saved.js';

/** Where an input's gradient goes: another node's output, or a leaf tensor's `.grad`. */
export type InputEdge = { node: AutogradNode; index: number } | { leaf: Tensor };

let nextNodeId = 1;

/**
 * One recorded op call on the tape. Holds its saved slots until its backward has run, or until
 * nothing can reach it any more: a node is referenced by its live output tensors and by the
 * nodes that consume them, and releases its saved values when the last reference goes (a graph
 * that is never differentiated frees its memory when its tensors are disposed).
 */
export class AutogradNode {
  static nextId(): number {
    return nextNodeId++;
  }
  private refs = 0;

  constructor(
    readonly id: number,
    readonly op: OpDef,
    readonly attrs: unknown,
    readonly inputs: readonly (InputEdge | null)[],
    readonly inputMeta: readonly (TensorMeta | null)[],
    readonly slots: Map<string, SavedSlot>,
    readonly state: Record<string, unknown>,
    readonly outputMeta: readonly TensorMeta[],
  ) {}

  get opName(): string {
    return this.op.name;
  }

  ref(): void {
    this.refs++;
  }

  unref(): void {
    if (--this.refs > 0) return;
    this.releaseSaved();
    for (const e of this.inputs) if (e && 'node' in e) e.node.unref();
  }

  releaseSaved(): void {
    for (const s of this.slots.values()) s.release();
  }
}
