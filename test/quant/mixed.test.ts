// Hessian-guided mixed precision: Hutchinson traces by double backward agree with central
// differences of first-order gradients, and the bit allocation honours the budget and the sensitivities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { mlp } from '../../src/nn/models.js';
import { allocateBits, hessianTraces } from '../../src/quant/ptq/mixed.js';
import { Rng } from '../../src/util/rng.js';

useFastestBackend();

test('Hutchinson traces: grad(createGraph) Hessian-vector products = finite differences of gradients', () => {
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 8 * 64 }, () => rng.uniform());
  const m = mlp([64, 24, 16, 10], 2);
  const a = hessianTraces(m, x, [8, 64], { hvp: 'autograd', samples: 3 });
  const f = hessianTraces(m, x, [8, 64], { hvp: 'finite-difference', samples: 3 });
  assert.deepEqual(a.map((s) => s.hvp), ['autograd', 'autograd', 'autograd']);
  a.forEach((s, i) => assert.ok(Math.abs(s.trace - f[i]!.trace) <= 0.01 * Math.abs(s.trace) + 1e-3, `layer ${i}: ${s.trace} vs ${f[i]!.trace}`));
  assert.ok(a[0]!.trace > 0, 'cross-entropy curvature of the first layer is positive');
});

test('allocateBits: within the budget, more bits where the trace is larger', () => {
  const m = mlp([64, 32, 32, 10], 5);
  const sens = (traces: number[]) => traces.map((trace, i) => ({ path: String(i), params: 0, trace, hvp: 'autograd' as const }));
  const sizes = [64 * 32, 32 * 32, 32 * 10], total = sizes.reduce((s, v) => s + v, 0);
  for (const traces of [[1000, 1, 1], [1, 1, 1000]]) {
    const bits = allocateBits(m, sens(traces), { avgBits: 4 });
    assert.ok(bits.reduce((s, b, i) => s + b * sizes[i]!, 0) <= 4 * total);
    const hot = traces.indexOf(1000);
    assert.ok(bits.every((b) => b <= bits[hot]!), `bits ${bits} for traces ${traces}`);
  }
  assert.throws(() => allocateBits(m, sens([1, 1, 1]), { avgBits: 2 }), /below the narrowest/);
});
