/**
 * Reverse-mode differentiation over the recorded graph. Nodes run in reverse creation order
 * (a topological order) as soon as every consumer has delivered its gradient; each node's
 * saved values are released right after its backward step, so memory falls during backward.
 */
import { keep, scope } from '../core/scope.js';
import { fmt } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { add, addInPlace, copyTo, onesLike } from '../ops/elementwise.js';
import { BackwardContext } from '../ops/registry.js';
import { withGradMode, withRecordedBackward } from './mode.js';
import type { AutogradNode } from './node.js';

export interface BackwardOptions {
  /** Gradient of the root (default: 1 for a one-element root). */
  grad?: Tensor;
  /** Keep saved values so that the graph can be differentiated again. */
  retainGraph?: boolean;
  /** Record the backward computation itself, for higher-order derivatives (implies retainGraph). */
  createGraph?: boolean;
}

function seedFor(root: Tensor, grad: Tensor | undefined): Tensor {
  if (grad) {
    if (grad.shape.join() !== root.shape.join()) throw new Error(`backward: grad ${fmt(grad.shape)} does not match the output ${fmt(root.shape)}`);
    return grad;
  }
  if (root.size !== 1) throw new Error(`backward: the output has shape ${fmt(root.shape)}; pass { grad } for a non-scalar output`);
  return onesLike(root);
}

/**
 * Core traversal. `deliver(leaf, g, owned)` receives each leaf's gradient contributions; `g`
 * belongs to the callee only for the duration of the call unless `createGraph` is on, or the
 * callee returns true for an `owned` g (one a backward step made and nothing else holds): then it
 * keeps g itself instead of copying it.
 */
function traverse(roots: Tensor[], seeds: Tensor[], retain: boolean, createGraph: boolean, deliver: (leaf: Tensor, g: Tensor, owned: boolean) => boolean): void {
  const pending = new Map<AutogradNode, (Tensor | null)[]>();
  const deps = new Map<AutogradNode, number>();
  // Count, for every reachable node, how many recorded consumers will send it a gradient.
  const stack: AutogradNode[] = [];
  for (const r of roots) {
    if (r.gradFn) {
      const n = r.gradFn.node as AutogradNode;
      if (!deps.has(n)) {
        deps.set(n, 0);
        stack.push(n);
      }
    }
  }
  while (stack.length) {
    const n = stack.pop()!;
    for (const e of n.inputs) {
      if (e && 'node' in e) {
        const seen = deps.has(e.node);
        deps.set(e.node, (deps.get(e.node) ?? 0) + 1);
        if (!seen) stack.push(e.node);
      }
    }
  }
  const accumulate = (node: AutogradNode, index: number, g: Tensor): void => {
    let slot = pending.get(node);
    if (!slot) pending.set(node, (slot = node.outputMeta.map(() => null)));
    const prev = slot[index];
    if (!prev) slot[index] = g;
    else {
      slot[index] = keep(add(prev, g));
      if (!createGraph) {
        prev.dispose();
        g.dispose();
      }
    }
  };
  roots.forEach((r, i) => {
    const s = seeds[i]!;
    if (r.gradFn) accumulate(r.gradFn.node as AutogradNode, r.gradFn.index, keep(s));
    else if (r.requiresGrad) deliver(r, s, false);
  });
  // Ready nodes, highest id (latest created) first.
  const ready = [...deps].filter(([, d]) => d === 0).map(([n]) => n);
  while (ready.length) {
    ready.sort((a, b) => a.id - b.id);
    const node = ready.pop()!;
    const grads = pending.get(node) ?? node.outputMeta.map(() => null);
    pending.delete(node);
    const needs = node.inputs.map((e) => e !== null);
    for (const slot of node.slots.values()) slot.observe(grads);
    const run = () =>
      scope(() => {
        const ctx = new BackwardContext(node, needs);
        return grads.some(Boolean) ? node.op.backward!(ctx, grads, node.attrs) : node.inputs.map(() => null);
      });
    if (createGraph && node.op.secondOrder === false) {
      throw new Error(`${node.opName}: its backward uses kernels that are not differentiable, so createGraph (higher-order gradients) through '${node.opName}' is not supported`);
    }
    const inputGrads = createGraph ? withRecordedBackward(node.opName, run) : withGradMode(false, run);
    if (!retain) node.releaseSaved();
    if (!createGraph) for (const g of grads) g?.dispose();
    node.inputs.forEach((e, i) => {
      const g = inputGrads[i] ?? null;
      if (!e) {
        g?.dispose();
        return;
      }
      if (g) {
        const meta = node.inputMeta[i]!;
        if (g.shape.join() !== meta.shape.join()) {
          throw new Error(`${node.opName}: backward returned a gradient ${fmt(g.shape)} for input '${node.op.inputs[i]}' of shape ${fmt(meta.shape)}`);
        }
        keep(g);
        if ('leaf' in e) {
          if (!deliver(e.leaf, g, !createGraph) && !createGraph) g.dispose();
        } else accumulate(e.node, e.index, g);
      }
      if ('node' in e) {
        const left = deps.get(e.node)! - 1;
        deps.set(e.node, left);
        if (left === 0) ready.push(e.node);
      }
    });
  }
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad (gradient
 * accumulation across calls until the optimizer zeroes them).
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no input of its computation requires grad)');
  const createGraph = opts.createGraph ?? false;
  const seed = seedFor(root, opts.grad);
  traverse([root], [seed], opts.retainGraph ?? createGraph, createGraph, (leaf, g, owned) => {
    if (createGraph) {
      const prev = leaf.grad;
      leaf.grad = keep(prev ? add(prev, g) : g);
    } else if (!leaf.grad) {
      if (owned && adoptable(g, leaf)) {
        // The first contribution becomes the gradient itself (no copy): rebooked as gradient memory.
        g.storage.rebook('gradient');
        leaf.grad = g;
        return true;
      }
      leaf.grad = keep(Tensor.uninitialized(leaf.shape, leaf.dtype, 'gradient')); // copyTo writes every element
      copyTo(g, leaf.grad);
    } else {
      addInPlace(leaf.grad, g);
    }
    return false;
  });
  if (!opts.grad && seed !== root) seed.dispose();
}

/** Whether `g` can serve as `leaf`'s gradient as it is: a whole contiguous storage of leaf's dtype that nothing else references. */
function adoptable(g: Tensor, leaf: Tensor): boolean {
  return g.dtype === leaf.dtype && g.storage.exclusive && g.offset === 0 && g.storage.length === g.size && g.isContiguous() && !g.gradFn;
}

export interface GradOptions {
  gradOutputs?: Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Return null (instead of throwing) for inputs the outputs do not depend on. */
  allowUnused?: boolean;
}

/** Gradients of `outputs` with respect to `inputs`, returned (not accumulated into `.grad`). */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const createGraph = opts.createGraph ?? false;
  const seeds = outs.map((o, i) => seedFor(o, opts.gradOutputs?.[i]));
  const found = new Map<Tensor, Tensor>();
  const wanted = new Set(inputs);
  for (const t of inputs) if (!t.requiresGrad) throw new Error(`grad: input tensor #${t.id} ${fmt(t.shape)} does not require grad`);
  traverse(outs, seeds, opts.retainGraph ?? createGraph, createGraph, (leaf, g) => {
    if (!wanted.has(leaf)) return false;
    const prev = found.get(leaf);
    if (createGraph) found.set(leaf, keep(prev ? add(prev, g) : g));
    else if (!prev) {
      const copy = keep(Tensor.uninitialized(leaf.shape, leaf.dtype)); // copyTo writes every element
      copyTo(g, copy);
      found.set(leaf, copy);
    } else addInPlace(prev, g);
    return false;
  });
  seeds.forEach((s, i) => {
    if (!opts.gradOutputs?.[i]) s.dispose();
  });
  return inputs.map((t) => {
    const g = found.get(t) ?? null;
    if (!g && !opts.allowUnused) throw new Error(`grad: an input tensor #${t.id} ${fmt(t.shape)} was not used to compute the outputs (pass allowUnused)`);
    return g;
  });
}
