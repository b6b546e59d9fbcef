// An interrupted and resumed run ends bit-identical to an uninterrupted one: weights, BatchNorm
// statistics and optimizer state (momentum / moments and step count), with the schedule, the data
// order and the activation-compression rounding picking up where they stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingCheckpoint, readCheckpoint, saveTrainingCheckpoint } from '../../src/io/checkpoint.js';
import { Dropout, Flatten, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { syntheticShapes } from '../../src/data/synthetic.js';
import { fit } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { Adam, SGD } from '../../src/optim/optimizer.js';
import { fromValues } from '../../src/core/tensor.js';
import { cli, lastJson } from '../cli/helpers.js';

function bits(file: string): Map<string, number[]> {
  const { tensors } = readCheckpoint(file);
  return new Map([...tensors].map(([k, t]) => [k, Array.from(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength))]));
}

function assertSameBits(a: string, b: string, what: string): void {
  const x = bits(a), y = bits(b);
  assert.deepEqual([...y.keys()].sort(), [...x.keys()].sort(), what);
  assert.ok([...x.keys()].some((k) => k.startsWith('optimizer/')), `${what}: no optimizer state saved`);
  for (const [k, v] of x) assert.ok(v.length === y.get(k)!.length && v.every((byte, i) => byte === y.get(k)![i]), `${what}: ${k} differs`);
}

// 128 items / batch 32 = 4 steps per epoch; 2 epochs = 8 steps.
const RUNS: [string, string[]][] = [
  ['lenet adam cosine, int8 activation compression', ['--model', 'lenet', '--act', 'int8']],
  ['mlp --quant w8a8 (LSQ step sizes), sgd momentum, weight decay', ['--model', 'mlp', '--quant', 'w8a8', '--optimizer', 'sgd', '--lr', '0.05', '--weight-decay', '1e-4']],
];

for (const [what, flags] of RUNS) {
  test(`resume: ${what}: interrupted and resumed = uninterrupted, bit for bit`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slimgrad-resume-'));
    try {
      const base = ['train', ...flags, '--data', 'synthetic', '--limit', '128', '--batch-size', '32', '--epochs', '2', '--seed', '3', '--json'];
      const full = join(dir, 'full.safetensors'), cut = join(dir, 'cut.safetensors');
      const a = await cli(...base, '--save', full, '--checkpoint-every', '100');
      assert.equal(a.code, 0, a.stderr);
      assert.equal(lastJson(a).steps, 8);
      // Interrupted after step 6 (epoch 2, batch 2; checkpoints every 4 steps and at the stop).
      const b = await cli(...base, '--save', cut, '--checkpoint-every', '4', '--max-steps', '6');
      assert.equal(b.code, 0, b.stderr);
      assert.equal(lastJson(b).stopped, 'max-steps');
      const { epoch, batch, steps } = JSON.parse(readCheckpoint(cut).metadata['slimgrad.run']!).position;
      assert.deepEqual({ epoch, batch, steps }, { epoch: 1, batch: 2, steps: 6 });
      // Resumed in place (the file it resumes from is its --save: no --force needed).
      const c = await cli('train', '--resume', cut, '--save', cut, '--json');
      assert.equal(c.code, 0, c.stderr);
      assert.equal(lastJson(c).steps, 8);
      assert.equal(lastJson(c).testAccuracy, lastJson(a).testAccuracy);
      assertSameBits(full, cut, `${what}, resumed at step 6`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('optimizer state dicts round-trip: a restored optimizer takes the same next step', () => {
  for (const make of [(p: ReturnType<typeof fromValues>) => new Adam([p], { lr: 0.1 }), (p: ReturnType<typeof fromValues>) => new SGD([p], { lr: 0.1, momentum: 0.9 })]) {
    const p1 = fromValues([1, -2, 3], [3]), p2 = fromValues([1, -2, 3], [3]);
    p1.requiresGrad = p2.requiresGrad = true;
    const o1 = make(p1), o2 = make(p2);
    const stepWith = (o: typeof o1, p: typeof p1, g: number[]) => {
      p.grad = fromValues(g, [3]);
      o.step();
      o.zeroGrad();
    };
    stepWith(o1, p1, [0.5, 0.1, -0.3]);
    stepWith(o1, p1, [0.2, -0.4, 0.1]);
    const s = o1.stateDict();
    assert.equal(s.steps, 2);
    p2.data().set(p1.data());
    o2.loadStateDict({ steps: s.steps, tensors: new Map([...s.tensors].map(([k, t]) => [k, { shape: t.shape, values: t.data().slice() }])) });
    stepWith(o1, p1, [0.3, 0.3, 0.3]);
    stepWith(o2, p2, [0.3, 0.3, 0.3]);
    assert.deepEqual(Array.from(p2.data()), Array.from(p1.data()));
    assert.throws(() => o2.loadStateDict({ steps: 1, tensors: new Map([['5.0', { shape: [3], values: [0, 0, 0] }]]) }), /unexpected state '5.0'/);
  }
});

test('library: fit resumed from saveTrainingCheckpoint reproduces a run with Dropout (mask stream restored)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-resume-lib-'));
  try {
    const data = syntheticShapes({ n: 96, seed: 2 });
    const [train, test] = data.split(64);
    const make = () => {
      const m = new Sequential(Flatten(), new Linear(784, 32, { rng: new Rng(1) }), ReLU(), new Dropout(0.3, 7), new Linear(32, 10, { rng: new Rng(2) }));
      return { m, opt: new Adam(m.parameters(), { lr: 1e-2 }) };
    };
    const options = { epochs: 2, batchSize: 16, seed: 4 };
    const a = make();
    fit(a.m, train, test, { ...options, optimizer: a.opt });
    const file = join(dir, 'run.safetensors');
    const b = make();
    const stopped = fit(b.m, train, test, { ...options, optimizer: b.opt, maxSteps: 5, checkpointEvery: 5, onCheckpoint: (at) => saveTrainingCheckpoint(file, b.m, b.opt, { position: JSON.stringify(at) }) });
    assert.equal(stopped.stopped, 'max-steps');
    const c = make();
    const meta = loadTrainingCheckpoint(file, c.m, c.opt);
    fit(c.m, train, test, { ...options, optimizer: c.opt, resume: JSON.parse(meta['position']!) });
    const want = [...a.m.stateDict()].map(([k, t]) => [k, Array.from(t.values())]);
    assert.deepEqual([...c.m.stateDict()].map(([k, t]) => [k, Array.from(t.values())]), want);
    // Without the mask stream's position the resumed run differs (the test can fail).
    const d = make();
    loadTrainingCheckpoint(file, d.m, d.opt);
    (d.m.namedModules().find(([, x]) => x instanceof Dropout)![1] as Dropout).rng.seek(0);
    fit(d.m, train, test, { ...options, optimizer: d.opt, resume: JSON.parse(meta['position']!) });
    assert.notDeepEqual([...d.m.stateDict()].map(([k, t]) => [k, Array.from(t.values())]), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Rng.seek continues a stream at any word', () => {
  const ref = new Rng(9, 3);
  const words = Array.from({ length: 12 }, () => ref.nextU32());
  for (let p = 0; p <= 8; p++) {
    const r = new Rng(9, 3);
    r.seek(p);
    assert.equal(r.position, p);
    assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32()], words.slice(p, p + 3));
  }
});

test('a run stopped within its first epoch reports that epoch so far: no test accuracy, a finite loss and speed', async () => {
  const r = await cli('train', '--data', 'synthetic', '--limit', '128', '--batch-size', '32', '--max-steps', '2', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = lastJson(r);
  assert.equal(j.testAccuracy, null);
  assert.ok(Number.isFinite(j.trainLoss) && j.trainLoss > 0, `trainLoss ${j.trainLoss}`);
  assert.ok(Number.isFinite(j.samplesPerSec) && j.samplesPerSec > 0 && j.samplesPerSec < 1e8, `samplesPerSec ${j.samplesPerSec}`);
  assert.match((await cli('train', '--data', 'synthetic', '--limit', '128', '--batch-size', '32', '--max-steps', '2')).stdout, /test accuracy - \(not evaluated: stopped mid-epoch\)/);
});
