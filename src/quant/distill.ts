/**
 * Representation-aligned distillation from a float teacher (DIR-Net's RBD, as re-implemented
 * here from the paper's description): the loss is cross-entropy plus `weight` times, for each
 * paired representation, the mean over the batch of ‖ŝ − t̂‖², where ŝ and t̂ are the student's and
 * the teacher's representations of an item flattened and scaled to unit L2 norm (so the binary
 * student is asked for the teacher's direction, not magnitudes it cannot represent). Pairs: the
 * outputs of the residual blocks in order when both models have them (ResNet-20 and its binary
 * twin), else the classifier inputs (the last Linear of each).
 *
 * @example
 * const d = distillation(student, teacher, { weight: 1 });
 * fit(student, train, test, { ...options, loss: d.loss });
 * d.remove();
 */
import { noGrad } from '../autograd/mode.js';
import { scope } from '../core/scope.js';
import { fromValues, type Tensor } from '../core/tensor.js';
import { add, crossEntropy, div, mul, mulScalar, reshape, sqrt, sub, sum } from '../ops/index.js';
import { Linear } from '../nn/layers.js';
import { BasicBlock } from '../nn/models.js';
import type { Module } from '../nn/module.js';

export interface DistillOptions {
  /** Weight of the representation terms next to cross-entropy (default 1). */
  weight?: number;
}

type Hooked = Module & { forward: (x: Tensor) => Tensor };

/** The modules whose representations are paired, and whether the representation is the module's input (classifier) or output (block). */
function representations(m: Module): { modules: Module[]; input: boolean } {
  const all = m.namedModules().map(([, x]) => x);
  const blocks = all.filter((x) => x instanceof BasicBlock);
  if (blocks.length) return { modules: blocks, input: false };
  const linears = all.filter((x) => x instanceof Linear);
  return { modules: linears.slice(-1), input: true };
}

/** Items of x [N, ...] scaled to unit L2 norm, as a differentiable tensor [N, D]. */
function unitRows(x: Tensor): Tensor {
  const flat = reshape(x, [x.shape[0]!, -1]);
  return div(flat, sqrt(add(sum(mul(flat, flat), [1], true), fromValues([1e-12], [1, 1]))));
}

/** The same on plain values. */
function unitRowsOf(v: Float32Array, n: number): Float32Array {
  const d = v.length / n, out = new Float32Array(v.length);
  for (let i = 0; i < n; i++) {
    let s = 1e-12;
    for (let j = i * d; j < (i + 1) * d; j++) s += v[j]! * v[j]!;
    const r = 1 / Math.sqrt(s);
    for (let j = i * d; j < (i + 1) * d; j++) out[j] = v[j]! * r;
  }
  return out;
}

/**
 * The distillation loss of `student` from `teacher` (run in eval mode, without gradients), and
 * `remove()`, which takes the capture hooks off both models.
 */
export function distillation(student: Module, teacher: Module, o: DistillOptions = {}): { loss: (model: Module, x: Tensor, y: Tensor) => Tensor; remove: () => void } {
  const weight = o.weight ?? 1;
  const s = representations(student), t = representations(teacher);
  if (s.modules.length !== t.modules.length || s.input !== t.input) {
    throw new Error(`distillation: the student has ${s.modules.length} ${s.input ? 'classifiers' : 'residual blocks'}, the teacher ${t.modules.length} ${t.input ? 'classifiers' : 'residual blocks'}: give a teacher of the same architecture`);
  }
  let targets: Float32Array[] = [];
  let terms: Tensor[] | null = null;
  const hooked: Hooked[] = [];
  const hook = (m: Module, input: boolean, seen: (rep: Tensor, i: number) => void, i: number) => {
    const h = m as Hooked, forward = h.forward.bind(h);
    h.forward = (x: Tensor) => {
      const y = forward(x);
      seen(input ? x : y, i);
      return y;
    };
    hooked.push(h);
  };
  t.modules.forEach((m, i) => hook(m, t.input, (rep) => void (targets[i] = unitRowsOf(Float32Array.from(rep.values()), rep.shape[0]!)), i));
  s.modules.forEach((m, i) => hook(m, s.input, (rep) => {
    if (!terms) return;
    const target = targets[i]!, n = rep.shape[0]!;
    if (target.length !== rep.size) throw new Error(`distillation: representation ${i} of the student has ${rep.size / n} values per item, the teacher's ${target.length / n}`);
    const d = sub(unitRows(rep), fromValues(target, [n, target.length / n]));
    terms.push(mulScalar(sum(mul(d, d)), weight / n));
  }, i));
  const loss = (model: Module, x: Tensor, y: Tensor): Tensor => {
    targets = [];
    const wasTraining = teacher.training;
    teacher.eval();
    noGrad(() => scope(() => void teacher.call(x)));
    teacher.train(wasTraining);
    const collected: Tensor[] = [];
    terms = collected;
    let ce: Tensor;
    try {
      ce = crossEntropy(model.call(x), y);
    } finally {
      terms = null;
    }
    if (collected.length !== s.modules.length) throw new Error(`distillation: ${collected.length} of ${s.modules.length} student representations were seen (is \`model\` the student?)`);
    return collected.reduce((l, term) => add(l, term), ce);
  };
  const remove = () => {
    for (const h of hooked) delete (h as { forward?: unknown }).forward;
  };
  return { loss, remove };
}
