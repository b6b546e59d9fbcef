// Shared fixtures for the ACT tests: deterministic batches and gradient comparisons.
import { backward } from '../../src/autograd/backward.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, type Tensor } from '../../src/core/tensor.js';
import type { Module } from '../../src/nn/module.js';
import { crossEntropy } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';
import type { Compression } from '../../src/compress/act.js';
import type { ForwardFn } from '../../src/compress/planner.js';

/** forward(batch): a seeded random batch through `model`, cross-entropy against seeded labels. */
export function classifierForward(model: Module, sampleShape: number[], classes = 10, seed = 1): ForwardFn {
  return (batch) => {
    const r = new Rng(seed, batch);
    const n = batch * sampleShape.reduce((a, b) => a * b, 1);
    const x = fromValues(Float32Array.from({ length: n }, () => r.normal()), [batch, ...sampleShape]);
    const y = fromValues(Int32Array.from({ length: batch }, () => r.int(classes)), [batch], 'int32');
    return crossEntropy(model.call(x), y);
  };
}

/** Token-id batches for a transformer classifier. */
export function tokenForward(model: Module, tokens: number, vocab: number, classes: number, seed = 1): ForwardFn {
  return (batch) => {
    const r = new Rng(seed, batch);
    const ids = fromValues(Int32Array.from({ length: batch * tokens }, () => r.int(vocab)), [batch, tokens], 'int32');
    const y = fromValues(Int32Array.from({ length: batch }, () => r.int(classes)), [batch], 'int32');
    return crossEntropy(model.call(ids), y);
  };
}

/** Parameter gradients (copies) of one forward+backward, optionally under a compression session. */
export function gradients(model: Module, forward: ForwardFn, batch: number, session?: Compression): Float32Array[] {
  model.zeroGrad();
  scope(() => {
    const loss: Tensor = session ? session.run(() => forward(batch)) : forward(batch);
    backward(loss);
  });
  const out = model.parameters().map((p) => (p.grad ? (p.grad.values() as Float32Array) : new Float32Array(p.size)));
  model.zeroGrad();
  return out;
}

/** ‖a − b‖ / ‖b‖ over one array (0 when both are zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return num === 0 ? 0 : Math.sqrt(num / den);
}

/** Relative error of all gradients taken together. */
export function totalRelError(a: Float32Array[], b: Float32Array[]): number {
  let num = 0, den = 0;
  a.forEach((g, i) => {
    const r = b[i]!;
    for (let j = 0; j < g.length; j++) {
      num += (g[j]! - r[j]!) ** 2;
      den += r[j]! ** 2;
    }
  });
  return Math.sqrt(num / den);
}
