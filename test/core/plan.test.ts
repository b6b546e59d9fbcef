import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Arena } from '../../src/core/arena.js';
import { planLayout, StepPlan } from '../../src/core/plan.js';
import { scope } from '../../src/core/scope.js';
import { backward } from '../../src/autograd/backward.js';
import { Compression } from '../../src/compress/act.js';
import { createModel } from '../../src/nn/index.js';
import { crossEntropy } from '../../src/ops/index.js';
import { SGD } from '../../src/optim/index.js';
import { fromValues } from '../../src/core/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** A step program: allocate a block, or free the k-th live block; blocks left live at the end escape the step. */
const stepProgram = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant('alloc' as const), bytes: fc.integer({ min: 1, max: 20_000 }), lifetime: fc.constantFrom('short' as const, 'long' as const, 'fixed' as const) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('free' as const), k: fc.nat() }) },
  ),
  { minLength: 1, maxLength: 60 },
);

interface Block { ptr: number; bytes: number; tag: number }

/**
 * Runs a program on `a`: fills each block with its own tag byte and checks every live block still
 * holds its tag after each allocation (a planned block overlapping a live one would overwrite it).
 */
type Op = { op: 'alloc'; bytes: number; lifetime: 'short' | 'long' | 'fixed' } | { op: 'free'; k: number };

function runProgram(a: Arena, ops: Op[], live: Block[], nextTag: { v: number }): void {
  const intact = () => {
    const bytes = new Uint8Array(a.memory.buffer);
    for (const b of live) for (let i = 0; i < b.bytes; i += 97) assert.equal(bytes[b.ptr + i], b.tag, `block at ${b.ptr} was overwritten`);
  };
  for (const o of ops) {
    if (o.op === 'alloc') {
      const ptr = a.alloc(o.bytes, o.lifetime);
      const tag = (nextTag.v++ % 255) + 1;
      new Uint8Array(a.memory.buffer, ptr, o.bytes).fill(tag);
      live.push({ ptr, bytes: o.bytes, tag });
      intact();
    } else if (live.length) {
      const [b] = live.splice(o.k % live.length, 1);
      a.free(b!.ptr, b!.bytes);
    }
  }
}

test('step plan: replayed, diverging and escaping steps never overlap live blocks, and the arena ends coalesced', () => {
  fc.assert(
    fc.property(stepProgram, stepProgram, fc.array(fc.boolean(), { minLength: 2, maxLength: 6 }), (p, q, which) => {
      const a = new Arena(1);
      const plan = new StepPlan(a);
      const live: Block[] = [];
      const tag = { v: 0 };
      for (const useQ of which) plan.run(() => runProgram(a, useQ ? q : p, live, tag));
      for (const b of live.splice(0)) a.free(b.ptr, b.bytes);
      assert.equal(a.reservedBytes, 0, 'every byte handed out came back');
      assert.deepEqual(a.freeBlocks(), [], 'free space coalesced back to the top');
    }),
    { numRuns: 300 },
  );
});

test('step plan: a repeated step replays the plan and its high-water is the live peak', () => {
  const a = new Arena(1);
  const plan = new StepPlan(a);
  // A step whose online placement fragments: a long block lands between two short ones, and a
  // later short block cannot use the hole the first one leaves.
  const step = () => {
    const s1 = a.alloc(4000, 'short');
    const l1 = a.alloc(1000, 'long');
    const s2 = a.alloc(4000, 'short');
    a.free(s1, 4000);
    const l2 = a.alloc(1000, 'long');
    const s3 = a.alloc(6000, 'short');
    a.free(s2, 4000);
    a.free(s3, 6000);
    a.free(l2, 1000);
    a.free(l1, 1000);
  };
  const base = a.usedBytes;
  plan.run(step);
  const onlineHighWater = a.highWaterBytes - base;
  a.resetHighWater();
  plan.run(step);
  plan.run(step);
  assert.equal(plan.replayedSteps, 2);
  const livePeak = Arena.blockSize(1000) * 2 + Arena.blockSize(4000) + Arena.blockSize(6000);
  assert.equal(plan.regionBytes, livePeak);
  assert.equal(a.highWaterBytes - base, livePeak);
  assert.ok(onlineHighWater > livePeak, `the online layout fragments (${onlineHighWater} > ${livePeak})`);
});

test('step plan: a block whose size varies a little from step to step (an entropy-coded stream) still replays', () => {
  const a = new Arena(1);
  const plan = new StepPlan(a);
  const step = (coded: number) => {
    const s1 = a.alloc(4000, 'short');
    const c = a.alloc(coded, 'long'); // saved for backward, its size depends on the data
    const s2 = a.alloc(4000, 'short');
    a.free(s1, 4000);
    const s3 = a.alloc(6000, 'short');
    a.free(s2, 4000);
    a.free(s3, 6000);
    a.free(c, coded);
  };
  const sizes = [5000, 5100, 5050, 4990, 5120, 5080, 5000, 5110, 5030, 5090];
  // The second step outgrows the first one's plan (that block online); from then on the plan has headroom.
  plan.run(() => step(sizes[0]!));
  plan.run(() => step(sizes[1]!));
  a.resetHighWater();
  const base = a.usedBytes;
  for (const n of sizes.slice(2)) plan.run(() => step(n));
  assert.equal(plan.replayedSteps, sizes.length - 2, 'a step after the first outgrown one left the plan');
  assert.ok(plan.regionBytes > 0, 'planning was given up');
  assert.equal(a.reservedBytes, 0);
  assert.ok(a.highWaterBytes - base <= plan.regionBytes, 'a later step ran above its planned region');
});

test('planLayout: blocks alive at the same time never share bytes', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 64, max: 5000 }), fc.nat(), fc.nat()), { minLength: 1, maxLength: 40 }), (blocks) => {
      // Build a valid trace: block k is allocated at its turn and freed after `life` more events.
      const sizes = blocks.map(([s]) => Arena.blockSize(s));
      const pending: [number, number][] = [];
      const events: number[] = [];
      blocks.forEach(([, life], k) => {
        events.push(k + 1);
        pending.push([events.length + (life % 7), k]);
        pending.sort((x, y) => x[0] - y[0]);
        while (pending.length && pending[0]![0] <= events.length) events.push(-(pending.shift()![1] + 1));
      });
      for (const [, k] of pending) events.push(-(k + 1));
      const layout = planLayout({ sizes, events });
      const born: number[] = [], died: number[] = [];
      events.forEach((e, t) => (e > 0 ? (born[e - 1] = t) : (died[-e - 1] = t)));
      let live = 0, peak = 0;
      for (const e of events) peak = Math.max(peak, (live += e > 0 ? sizes[e - 1]! : -sizes[-e - 1]!));
      assert.ok(layout.regionBytes >= peak);
      for (let i = 0; i < sizes.length; i++) {
        for (let j = i + 1; j < sizes.length; j++) {
          if (born[i]! < died[j]! && born[j]! < died[i]!) {
            const [oi, oj] = [layout.offsets[i]!, layout.offsets[j]!];
            assert.ok(oi + sizes[i]! <= oj || oj + sizes[j]! <= oi, `blocks ${i} and ${j} overlap`);
          }
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('step plan: training under a planned layout gives bit-identical weights, with a smaller batch in between', () => {
  const train = (planned: boolean) => {
    const model = createModel('lenet', [1, 28, 28], 10, 3);
    const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const session = new Compression({ mode: 'int2', model, seed: 1 });
    const plan = new StepPlan();
    for (const batch of [16, 16, 16, 5, 16, 16]) {
      const step = () => scope(() => {
        const r = new Rng(batch, 11);
        const x = fromValues(Float32Array.from({ length: batch * 784 }, () => r.normal()), [batch, 1, 28, 28]);
        const y = fromValues(Int32Array.from({ length: batch }, () => r.int(10)), [batch], 'int32');
        backward(session.run(() => crossEntropy(model.call(x), y)));
        optimizer.step();
        optimizer.zeroGrad();
      });
      if (planned) plan.run(step);
      else step();
    }
    const weights = model.parameters().map((p) => Array.from(p.values() as Float32Array));
    model.dispose();
    optimizer.dispose();
    return { weights, replayed: plan.replayedSteps };
  };
  const online = train(false), planned = train(true);
  // Steps 2 and 3 replay step 1's plan; step 4 (batch 5) diverges and becomes the plan, so step 5
  // diverges too and step 6 replays step 5's plan.
  assert.equal(planned.replayed, 3);
  assert.deepEqual(planned.weights, online.weights);
});
