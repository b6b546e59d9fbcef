// Every loader under the fuzz harness (test/fuzz/harness.ts): a few hundred hostile variants of
// valid files per format, each ending in the format's error naming the file, the original
// result, or a result an independent decoder confirms; `npm run fuzz` runs many more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applyPlan, FAILURES, planArbitrary, runCase, type FuzzFormat } from './harness.js';
import { FORMATS } from './formats.js';
import { parseIdx } from '../../src/data/index.js';

const RUNS = 250;

for (const [i, format] of FORMATS.entries()) {
  test(`fuzz ${format.name}: ${RUNS} hostile variants are rejected naming the file, or read faithfully`, () => {
    fc.assert(
      fc.property(format.valid, planArbitrary(format), (value, plan) => {
        const r = runCase(format, value, plan);
        assert.ok(!FAILURES.has(r.outcome), `${r.outcome} after ${r.mutation}: ${r.detail ?? `${r.ms.toFixed(0)} ms`}`);
      }),
      { numRuns: RUNS, seed: 0x5eed + i },
    );
  });
}

test('the harness fails loaders that drop data, throw engine errors or write long messages', () => {
  const idx = FORMATS.find((f) => f.name === 'idx')!;
  const broken = (load: FuzzFormat['load']): FuzzFormat => ({ ...idx, load });
  const outcomes = (format: FuzzFormat) =>
    new Set(fc.sample(fc.tuple(format.valid, planArbitrary(format)), { numRuns: 300, seed: 7 }).map(([v, p]) => runCase(format, v, p).outcome));
  // Zero-fills truncated data instead of refusing it.
  const lenient = broken((b, f) => {
    try {
      return parseIdx(b, f);
    } catch (e) {
      const need = /needs (\d+) bytes/.exec((e as Error).message);
      if (!need || Number(need[1]) > 1 << 16) throw e;
      const padded = new Uint8Array(Number(need[1]));
      padded.set(b);
      return parseIdx(padded, f);
    }
  });
  assert.ok(outcomes(lenient).has('silent-change'));
  assert.ok(outcomes(broken(() => { throw new RangeError('Invalid typed array length: 4294967295'); })).has('wrong-error'));
  assert.ok(outcomes(broken((b, f) => { const r = parseIdx(b, f); r.data.fill(0); return r; })).has('silent-change'));
});

test('every .sgq variant the loader accepts runs in both deploy runtimes (the shape checks cover what the kernels assume)', async () => {
  const { runDeployed } = await import('../../src/quant/runtime.js');
  const { runPacked } = await import('../../src/quant/packed.js');
  const sgq = FORMATS.find((f) => f.name === 'sgq')!;
  let accepted = 0;
  for (const [value, plan] of fc.sample(fc.tuple(sgq.valid, planArbitrary(sgq)), { numRuns: 600, seed: 0x5c9 })) {
    let model;
    try {
      model = sgq.load(applyPlan(sgq, value, sgq.encode(value), plan), sgq.file);
    } catch {
      continue;
    }
    accepted++;
    const x = new Float32Array(2 * model.inputShape.reduce((a: number, b: number) => a * b, 1)).fill(0.5);
    for (const run of [runDeployed, runPacked]) assert.equal(run(model, x, [2, ...model.inputShape]).shape[0], 2);
  }
  assert.ok(accepted >= 20, `${accepted} accepted variants`);
});
