// Representation-aligned distillation (DIR-Net RBD re-implementation): the loss is cross-entropy
// plus the paired unit-norm representation distances, checked against a layer-by-layer
// computation; a model distilled from itself adds nothing; gradients reach the student.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { backward } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, type Tensor } from '../../src/core/tensor.js';
import { crossEntropy } from '../../src/ops/index.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { BasicBlock, lenet5, resnet20 } from '../../src/nn/models.js';
import { applyQuantPreset } from '../../src/quant/models.js';
import { distillation } from '../../src/quant/distill.js';
import { Rng } from '../../src/util/rng.js';

useFastestBackend();
const SHAPE = [1, 28, 28], n = 4;
const rng = new Rng(21, 1);
const x = fromValues(Float32Array.from({ length: n * 784 }, () => rng.uniform()), [n, ...SHAPE]);
const y = fromValues([1, 7, 3, 0], [n], 'int32');

/** Σ over pairs of mean over items of ‖ŝ − t̂‖², the representations taken layer by layer (top-level Sequential walk). */
function expectedTerm(student: Sequential, teacher: Sequential, blocks: boolean): number {
  const reps = (m: Sequential) => noGrad(() => scope(() => {
    const out: Float32Array[] = [];
    let h = x;
    for (const l of m.layers) {
      if (!blocks && l === m.layers[m.layers.length - 1] && l instanceof Linear) out.push(Float32Array.from(h.values()));
      h = l.call(h);
      if (blocks && l instanceof BasicBlock) out.push(Float32Array.from(h.values()));
    }
    return out;
  }));
  const unit = (v: Float32Array) => {
    const d = v.length / n;
    return Array.from({ length: n }, (_, i) => {
      const row = Array.from(v.subarray(i * d, (i + 1) * d)), norm = Math.sqrt(row.reduce((a, b) => a + b * b, 1e-12));
      return row.map((e) => e / norm);
    });
  };
  const s = reps(student), t = reps(teacher);
  assert.equal(s.length, t.length);
  let total = 0;
  s.forEach((sv, p) => {
    const su = unit(sv), tu = unit(t[p]!);
    su.forEach((row, i) => row.forEach((e, j) => (total += (e - tu[i]![j]!) ** 2 / n)));
  });
  return total;
}

const ce = (m: Sequential) => noGrad(() => scope(() => crossEntropy(m.call(x), y).item()));

test('distilling a model from itself adds nothing; a binary ResNet-20 from a float one adds the block distances', () => {
  const teacher = resnet20(10, 3, 1).eval() as Sequential;
  const self = distillation(teacher, teacher);
  assert.ok(Math.abs(noGrad(() => scope(() => self.loss(teacher, x, y).item())) - ce(teacher)) < 1e-6);
  self.remove();

  const student = applyQuantPreset('resnet20', 'dirnet', 3, SHAPE, 10).eval();
  const term = expectedTerm(student, teacher, true);
  assert.ok(term > 0.1, `term ${term}`);
  for (const weight of [1, 2.5]) {
    const d = distillation(student, teacher, { weight });
    const got = noGrad(() => scope(() => d.loss(student, x, y).item()));
    d.remove();
    assert.ok(Math.abs(got - (ce(student) + weight * term)) < 1e-4 * (1 + got), `weight ${weight}: ${got} vs ${ce(student) + weight * term}`);
  }
  // Gradients reach the student's binary convs through the representation terms.
  const d = distillation(student, teacher, { weight: 1 });
  student.train();
  scope(() => backward(d.loss(student, x, y)));
  const conv = student.namedModules().find(([p]) => p === '2.body.0')![1] as unknown as { weight: Tensor };
  assert.ok(conv.weight.grad && conv.weight.grad.values().some((v) => v !== 0));
  d.remove();
  assert.equal(Object.hasOwn(student.layers[2]!, 'forward'), false, 'remove() takes the hooks off');
  student.dispose();
  teacher.dispose();
});

test('without residual blocks the classifier inputs are paired (binary LeNet-5 from LeNet-5); mismatched architectures are refused', () => {
  const teacher = lenet5(10, 4, 1, 28).eval() as Sequential, student = applyQuantPreset('lenet', 'dirnet', 4).eval();
  const d = distillation(student, teacher);
  const got = noGrad(() => scope(() => d.loss(student, x, y).item()));
  d.remove();
  assert.ok(Math.abs(got - (ce(student) + expectedTerm(student, teacher, false))) < 1e-4 * (1 + got));
  assert.throws(() => distillation(student, resnet20(10, 1, 1)), /the student has 1 classifiers, the teacher 9 residual blocks/);
});
