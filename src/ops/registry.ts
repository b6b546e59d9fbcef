/**
 * The op registry. An op is defined once, here: its inputs, its shape inference, its forward
 * (calling backend kernels or other ops), its backward (written with ops, so it is itself
 * differentiable) and the values its backward reads (`saves`, the save policy table). Gradient
 * checks, backend parity tests and save-policy tests walk this registry, so a new op cannot
 * skip them.
 */
import type { DType } from '../core/dtype.js';
import { fmt, ShapeError } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { isGradEnabled, recordingBackward, withGradMode } from '../autograd/mode.js';
import { AutogradNode, type InputEdge } from '../autograd/node.js';
import { SavedSlot, saveSpec, type SaveRole, type SaveSpec } from '../autograd/saved.js';
import type { Rng } from '../util/rng.js';

export interface TensorMeta {
  shape: readonly number[];
  dtype: DType;
}

/** An input for generated tests: a shape, and how to fill it. */
export interface InputSpec {
  shape: number[];
  dtype?: DType;
  /** Fill with these values (e.g. class labels) instead of random normals. */
  values?: (rng: Rng) => number[];
  /** Keep random values away from 0 by at least this much (for non-smooth points, e.g. relu kinks). */
  awayFromZero?: number;
  /** Positive values only (log, sqrt, division). */
  positive?: boolean;
}

export interface OpSample {
  inputs: (InputSpec | null)[];
  attrs: any;
  /** Shown in test names. */
  label?: string;
}

export interface OpDef<A = any> {
  readonly name: string;
  /** Names of the tensor inputs in order; a trailing '?' marks an optional input (may be null). */
  readonly inputs: readonly string[];
  /**
   * Every value backward reads, with its role (and policy hints: SaveSpec): the op's save policy.
   * Saving anything else is an error; the generated save-policy walk fails on a declared save
   * that backward never reads.
   */
  readonly saves: Readonly<Record<string, SaveRole | SaveSpec>>;
  /** Output shapes and dtypes from the inputs'; throws a ShapeError naming the op and the shapes. */
  infer(inputs: readonly (TensorMeta | null)[], attrs: A): TensorMeta[];
  forward(ctx: ForwardContext, inputs: readonly (Tensor | null)[], attrs: A): Tensor[];
  /** Input gradients from output gradients (null = no gradient flows there). Absent: not differentiable. */
  backward?(ctx: BackwardContext, grads: readonly (Tensor | null)[], attrs: A): (Tensor | null)[];
  /** Which inputs gradients flow to (default: every float input). */
  readonly differentiable?: readonly boolean[];
  /** Sample inputs for generated gradient checks and backend parity tests. */
  readonly samples?: () => OpSample[];
  /**
   * False when backward uses kernels that are not themselves differentiable (conv, norms, ...):
   * higher-order gradients (createGraph) through this op are then an error, never silently zero.
   */
  readonly secondOrder?: boolean;
  /** Finite-difference tolerance override (e.g. ops with kinks). */
  readonly gradcheckTolerance?: number;
  /**
   * True for quantizers whose backward is a pseudo-gradient (straight-through estimator or a
   * smooth surrogate): by design not the derivative of forward, so finite differences cannot
   * check it. The generated gradcheck skips these ops by name; their backward is tested against
   * its closed form (test/quant/quantizers.test.ts).
   */
  readonly straightThrough?: boolean;
  /** True if forward writes into its first input (in-place ops; never recorded by autograd). */
  readonly inPlace?: boolean;
}

const registry = new Map<string, OpDef>();

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  if (registry.has(def.name)) throw new Error(`defineOp: op '${def.name}' is defined twice`);
  for (const [name, d] of Object.entries(def.saves)) {
    if (!d || !saveSpec(d).role) throw new Error(`defineOp: '${def.name}' save '${name}' has no role`);
  }
  registry.set(def.name, def as OpDef);
  return def;
}

export function getOp(name: string): OpDef {
  const op = registry.get(name);
  if (!op) throw new Error(`unknown op '${name}'`);
  return op;
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}

/** Per-call state handed to an op's forward: saving values and small non-tensor state. */
export class ForwardContext {
  readonly slots = new Map<string, SavedSlot>();
  /** Small non-tensor values backward needs (shapes, seeds, geometry). */
  readonly state: Record<string, unknown> = {};

  constructor(
    readonly op: OpDef,
    /** True when the call is recorded for autograd: only then are saves kept. */
    readonly needsGrad: boolean,
    readonly nodeId: number,
  ) {}

  /** Keeps `t` for backward under the declared name. A no-op when no gradient is needed. */
  save(name: string, t: Tensor): void {
    const declared = this.op.saves[name];
    if (!declared) {
      throw new Error(`${this.op.name}: saves undeclared value '${name}' (declared: ${Object.keys(this.op.saves).join(', ') || 'none'})`);
    }
    if (!this.needsGrad) return;
    if (this.slots.has(name)) throw new Error(`${this.op.name}: saves '${name}' twice`);
    this.slots.set(name, new SavedSlot(t, this.op.name, name, saveSpec(declared), this.nodeId));
  }
}

/** What an op's backward sees: its saved values (unpacked on demand), state and input metadata. */
export class BackwardContext {
  constructor(
    readonly node: AutogradNode,
    /** Whether each input needs a gradient; backward may skip the others (return null). */
    readonly needsInputGrad: readonly boolean[],
  ) {}

  saved(name: string): Tensor {
    const slot = this.node.slots.get(name);
    if (!slot) throw new Error(`${this.node.opName}: backward reads '${name}', which forward did not save`);
    return slot.get();
  }

  get state(): Record<string, unknown> {
    return this.node.state;
  }

  inputShape(i: number): readonly number[] {
    return this.node.inputMeta[i]!.shape;
  }
}

function metaOf(t: Tensor | null): TensorMeta | null {
  return t ? { shape: t.shape, dtype: t.dtype } : null;
}

/** Runs an op: validates, computes, and records it for autograd when any input requires grad. */
export function runOp<A>(op: OpDef<A>, inputs: readonly (Tensor | null)[], attrs: A): Tensor[] {
  if (inputs.length !== op.inputs.length) {
    throw new Error(`${op.name}: expected ${op.inputs.length} inputs (${op.inputs.join(', ')}), got ${inputs.length}`);
  }
  inputs.forEach((t, i) => {
    const name = op.inputs[i]!;
    if (t === null || t === undefined) {
      if (!name.endsWith('?')) throw new Error(`${op.name}: input '${name}' is required`);
    } else if (!(t instanceof Tensor)) {
      throw new TypeError(`${op.name}: input '${name}' must be a Tensor, got ${typeof t}`);
    } else {
      t.assertAlive(`${op.name} (input '${name}')`);
    }
  });
  const metas = inputs.map((t) => metaOf(t ?? null));
  const expected = op.infer(metas, attrs);
  const diff = op.differentiable;
  const gradInputs = inputs.map(
    (t, i) => !!t && t.requiresGrad && (diff ? diff[i] === true : t.dtype === 'float32' || t.dtype === 'float64'),
  );
  const record = !op.inPlace && op.backward !== undefined && isGradEnabled() && gradInputs.some(Boolean);
  const recordingFor = recordingBackward();
  if (recordingFor && !op.backward && isGradEnabled() && gradInputs.some(Boolean)) {
    // Silently cutting the graph here would give zero higher-order derivatives.
    throw new Error(`${recordingFor}: its backward uses '${op.name}', which is not differentiable, so createGraph (higher-order gradients) through '${recordingFor}' is not supported`);
  }
  const nodeId = record ? AutogradNode.nextId() : 0;
  const ctx = new ForwardContext(op as OpDef, record, nodeId);
  // Ops an op's forward calls internally (copies, helpers) are part of it, never recorded.
  const outputs = withGradMode(false, () => op.forward(ctx, inputs, attrs));
  if (outputs.length !== expected.length) {
    throw new Error(`${op.name}: forward returned ${outputs.length} outputs, shape inference says ${expected.length}`);
  }
  outputs.forEach((o, i) => {
    const e = expected[i]!;
    if (o.dtype !== e.dtype || o.shape.length !== e.shape.length || o.shape.some((d, j) => d !== e.shape[j])) {
      throw new ShapeError(op.name, `forward produced ${fmt(o.shape)} ${o.dtype} but shape inference says ${fmt(e.shape)} ${e.dtype}`);
    }
  });
  if (record) {
    const edges: (InputEdge | null)[] = inputs.map((t, i) => {
      if (!t || !gradInputs[i]) return null;
      if (!t.gradFn) return { leaf: t.autogradLeaf ?? t };
      const node = t.gradFn.node as AutogradNode;
      node.ref();
      return { node, index: t.gradFn.index };
    });
    const node = new AutogradNode(nodeId, op as OpDef, attrs, edges, metas, ctx.slots, ctx.state, outputs.map(metaOf) as TensorMeta[]);
    outputs.forEach((o, i) => {
      if (o.dtype === 'float32' || o.dtype === 'float64') {
        o.requiresGrad = true;
        o.gradFn = { node, index: i };
        node.ref();
        for (const slot of ctx.slots.values()) if (slot.tensorId === o.id) slot.bindOutput(o.gradFn);
      }
    });
  }
  return outputs;
}
