// Every backend against the reference, generated from the op registry: each sample of each op,
// forward outputs and input gradients, in float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/autograd/backward.js';
import { getBackend, listBackends, setBackend } from '../../src/backends/index.js';
import { useFastestBackend } from '../../src/backends/index.js';
import { scope } from '../../src/core/scope.js';
import type { Tensor } from '../../src/core/tensor.js';
import { allOps, runOp } from '../../src/ops/all.js';
import { add, mul, sum } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';
import { makeInput } from '../helpers.js';
import { registryWalk } from '../registry-walk.js';

const walk = registryWalk('backend parity');
useFastestBackend();
const others = listBackends().filter((b) => b !== 'reference');

/** Outputs and input gradients of one op sample on the active backend, as plain arrays. */
function run(opName: string, sampleIndex: number): number[][] {
  const op = allOps().find((o) => o.name === opName)!;
  const sample = op.samples!()[sampleIndex]!;
  return scope(() => {
    const rng = new Rng(100 + sampleIndex, 7);
    const inputs = sample.inputs.map((s) => (s ? makeInput(s, rng, 'float32') : null));
    const wrt = inputs.filter((t, i): t is Tensor => !!t && (op.differentiable ? op.differentiable[i] === true : t.dtype === 'float32'));
    for (const t of wrt) t.requiresGrad = !!op.backward;
    const outs = runOp(op, inputs, sample.attrs);
    const result = outs.map((o) => o.toArray());
    if (op.backward && wrt.length) {
      const weights = outs.map((o) => makeInput({ shape: [...o.shape] }, rng, 'float32'));
      let total = sum(mul(outs[0]!, weights[0]!));
      for (let i = 1; i < outs.length; i++) total = add(total, sum(mul(outs[i]!, weights[i]!)));
      for (const g of grad(total, wrt, { allowUnused: true })) result.push(g ? g.toArray() : []);
    }
    return result;
  });
}

for (const backend of others) {
  for (const op of allOps().filter((o) => o.samples)) {
    op.samples!().forEach((sample, si) => {
      test(`${backend} matches reference: ${op.name} ${sample.label ?? si}`, () => {
        const prev = getBackend();
        setBackend('reference');
        const want = run(op.name, si);
        setBackend(backend);
        const got = run(op.name, si);
        setBackend(prev);
        assert.equal(got.length, want.length);
        want.forEach((w, i) => {
          const scale = Math.max(1, ...w.map(Math.abs));
          const worst = Math.max(0, ...w.map((v, j) => Math.abs(v - got[i]![j]!)));
          assert.ok(worst <= 1e-5 * scale, `${op.name} result ${i}: max difference ${worst} (scale ${scale})`);
        });
      });
    });
  }
}

test('a non-reference backend is available here (the parity tests above ran)', () => {
  assert.ok(others.length > 0, `only ${listBackends().join(', ')}`);
});

walk.done();
