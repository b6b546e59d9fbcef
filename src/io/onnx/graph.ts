/**
 * Modules for ONNX graphs that are not a simple chain: `Merge` (Add/Concat of several
 * activations, or of an activation and a constant) and `GraphModule`, which runs a DAG of
 * modules in ONNX's topological order, freeing each intermediate after its last consumer.
 */
import { Tensor } from '../../core/tensor.js';
import { add, concat } from '../../ops/index.js';
import { Module } from '../../nn/module.js';

/** Add or Concat of several inputs; `constant` (Add only) is a broadcast addend such as a MatMul's bias. */
export class Merge extends Module {
  constructor(readonly kind: 'add' | 'concat', readonly axis = 1, readonly constant: Tensor | null = null) {
    super();
  }
  forward(...xs: Tensor[]): Tensor {
    if (this.kind === 'concat') return concat(xs, this.axis);
    const all = this.constant ? [...xs, this.constant] : xs;
    let acc = all[0]!;
    for (let i = 1; i < all.length; i++) {
      const next = add(acc, all[i]!);
      if (i > 1) acc.dispose();
      acc = next;
    }
    return all.length === 1 ? acc.alias() : acc;
  }
}

/** One node of a GraphModule: a module applied to named values, producing one named value. */
export interface GraphNode {
  name: string;
  module: Module;
  inputs: string[];
  output: string;
}

/** A DAG of modules (ResNet-style graphs with Add/Concat); nodes are in topological order. */
export class GraphModule extends Module {
  constructor(readonly input: string, readonly nodes: GraphNode[], readonly output: string) {
    super();
    nodes.forEach((n, i) => this.registerModule(String(i), n.module));
    this.finalize();
  }
  forward(x: Tensor): Tensor {
    const values = new Map<string, Tensor>([[this.input, x]]);
    const uses = new Map<string, number>();
    for (const n of this.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const n of this.nodes) {
      const y = n.module.call(...n.inputs.map((i) => values.get(i)!));
      values.set(n.output, y);
      for (const i of n.inputs) {
        const left = uses.get(i)! - 1;
        uses.set(i, left);
        if (left === 0 && i !== this.input && i !== this.output) values.get(i)!.dispose();
      }
    }
    const out = values.get(this.output)!;
    return out === x ? x.alias() : out;
  }
}
