import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backward } from '../../src/autograd/backward.js';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { freePort, pipeline } from '../../src/cli/commands/pipeline.js';
import { scope } from '../../src/core/scope.js';
import type { Tensor } from '../../src/core/tensor.js';
import { ErrorFeedback, ringAllReduce } from '../../src/distributed/allreduce.js';
import { parseCodec } from '../../src/distributed/codec.js';
import { runInProcess } from '../../src/distributed/pipeline.js';
import { disposeStage, forwardLayers, type StageResult } from '../../src/distributed/stage.js';
import { batchIds, createTask, partition, type PipelineTask, type TaskOptions } from '../../src/distributed/tasks.js';
import { inProcessPair } from '../../src/distributed/transport.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { mulScalar } from '../../src/ops/index.js';
import { SGD } from '../../src/optim/optimizer.js';

useFastestBackend(); // the stage processes run the CLI, which picks the fastest backend too

const LM: TaskOptions = { model: 'charlm', examples: 48, dim: 16, layers: 2, heads: 2, tokens: 8 };
const MLP: TaskOptions = { model: 'mlp', examples: 128 };
const sgd = { lr: 0.05, momentum: 0.9 };
const fp32 = parseCodec('fp32', 'test');

/** Plain single-process training of the whole model with the same data order and micro-batching. */
function reference(task: PipelineTask, steps: number, batch: number, micro: number): { params: Tensor[]; losses: number[]; dispose(): void } {
  const layers = task.layers();
  const params = layers.flatMap((l) => l.parameters());
  const opt = new SGD(params, sgd);
  const losses: number[] = [];
  const mb = batch / micro;
  for (let step = 0; step < steps; step++) {
    const ids = batchIds(task.examples, batch, 1, 0, step, 0);
    let total = 0;
    for (let m = 0; m < micro; m++) {
      const mids = ids.slice(m * mb, (m + 1) * mb);
      total += scope(() => {
        const loss = mulScalar(task.loss(forwardLayers(layers, task.inputs(mids)), task.targets(mids)), 1 / micro);
        backward(loss);
        return loss.item();
      });
    }
    opt.step();
    opt.zeroGrad();
    losses.push(total);
  }
  return { params, losses, dispose: () => layers.forEach((l) => l.dispose()) };
}

function differing(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  assert.equal(a.length, b.length);
  let n = 0;
  a.forEach((x, i) => {
    assert.equal(x.length, b[i]!.length);
    for (let j = 0; j < x.length; j++) if (x[j] !== b[i]![j]) n++;
  });
  return n;
}

const values = (ts: Tensor[]) => ts.map((t) => t.data().slice());
const stageParams = (rs: StageResult[]) => rs.flatMap((r) => values(r.params));

test('fp32 pipeline over in-process links (3 stages, 2 micro-batches) is bit-identical to single-process training', async () => {
  const task = createTask(LM);
  const ranges = partition(task.layers(), 3);
  const ref = reference(task, 4, 8, 2);
  // A slow simulated link changes timing only, never the numbers.
  const res = await runInProcess({ task, ranges, batch: 8, micro: 2, steps: 4, sgd, forward: fp32, backward: fp32 }, { bitsPerSecond: 50e6, delayMs: 1 });
  assert.deepEqual(res[2]!.losses, ref.losses);
  assert.equal(differing(stageParams(res), values(ref.params)), 0);
  // Wire bytes: per step, 2 micro-batches x (activation + gradient) of [4, 8, 16] fp32 on each of the 2 boundaries.
  const payload = res.reduce((n, r) => n + r.sent.next.payloadBytes + r.sent.prev.payloadBytes, 0);
  assert.equal(payload, 4 * 2 * 2 * 2 * (4 * 8 * 16 * 4));
  res.forEach(disposeStage);
  ref.dispose();
});

test('simulated link: frames arrive in order, no faster than the token bucket allows', async () => {
  const [a, b] = inProcessPair('A', 'B', { bitsPerSecond: 8e6, delayMs: 5 });
  const t0 = performance.now();
  for (let i = 0; i < 4; i++) void a.send({ kind: 'act', micro: i }, new Uint8Array(25_000));
  for (let i = 0; i < 4; i++) assert.equal((await b.recv()).header.micro, i);
  // 100 kB at 1 MB/s is 100 ms, plus the delay.
  assert.ok(performance.now() - t0 >= 100, `took ${performance.now() - t0} ms`);
  assert.ok(a.stats.payloadBytes === 100_000 && a.stats.framingBytes > 0);
  a.close();
  await assert.rejects(b.recv(), /A closed the connection/);
});

test('delta 4-bit forward + 8-bit backward trains close to fp32 and sends deltas after the first epoch', async () => {
  const task = createTask(LM);
  const ranges = partition(task.layers(), 2);
  const base = { task, ranges, batch: 8, micro: 2, steps: 18, sgd: { lr: 0.1, momentum: 0.9 } };
  const full = await runInProcess({ ...base, forward: fp32, backward: fp32 });
  const comp = await runInProcess({ ...base, forward: parseCodec('delta:4', 't'), backward: parseCodec('fixpoint:8', 't') });
  const mean = (xs: number[]) => xs.slice(-6).reduce((s, x) => s + x, 0) / 6;
  assert.ok(Math.abs(mean(comp[1]!.losses) - mean(full[1]!.losses)) < 0.05, `${mean(comp[1]!.losses)} vs ${mean(full[1]!.losses)}`);
  // 6 steps per epoch: epoch 1 fp32 (warm-up), epochs 2-3 4-bit deltas; gradients 8-bit throughout.
  const fwd = (r: StageResult[]) => r[0]!.sent.next.payloadBytes;
  const act = 4 * 8 * 16;
  assert.equal(fwd(full), 18 * 2 * act * 4);
  assert.equal(fwd(comp), 6 * 2 * act * 4 + 12 * 2 * (act / 2 + 2 * 16));
  assert.equal(comp[1]!.sent.prev.payloadBytes, 18 * 2 * (act + 2 * 16));
  [...full, ...comp].forEach(disposeStage);
});

test('2 data-parallel replicas (fp32 ring all-reduce) match one process at twice the batch; pipeline x data parallel composes', async () => {
  const task = createTask(MLP);
  const steps = 100;
  const ref = reference(task, steps, 16, 2);
  for (const stages of [1, 2]) {
    const res = await runInProcess({ task, ranges: partition(task.layers(), stages), replicas: 2, batch: 8, micro: 1, steps, sgd, forward: fp32, backward: fp32 });
    const refv = values(ref.params);
    for (const replica of [0, 1]) {
      const mine = stageParams(res.filter((r) => r.replica === replica));
      let num = 0, den = 0;
      mine.forEach((p, i) => p.forEach((v, j) => {
        num += (v - refv[i]![j]!) ** 2;
        den += refv[i]![j]! ** 2;
      }));
      assert.ok(Math.sqrt(num / den) <= 1e-5, `${stages} stage(s), replica ${replica}: relative difference ${Math.sqrt(num / den)}`);
    }
    assert.equal(differing(stageParams(res.filter((r) => r.replica === 0)), stageParams(res.filter((r) => r.replica === 1))), 0, 'replicas hold identical weights');
    res.forEach(disposeStage);
  }
  ref.dispose();
});

test('compressed ring all-reduce: every replica gets the same bits; error feedback keeps the running sum unbiased', async () => {
  const R = 3, n = 1000, rounds = 20;
  const pairs = Array.from({ length: R }, (_, i) => inProcessPair(`r${i}`, `r${(i + 1) % R}`));
  const rings = Array.from({ length: R }, (_, i) => ({ index: i, size: R, next: pairs[i]![0], prev: pairs[(i + R - 1) % R]![1] }));
  const fb = rings.map(() => new ErrorFeedback(n));
  const exact = new Float64Array(n), got = new Float64Array(n);
  for (let step = 0; step < rounds; step++) {
    const vs = rings.map((_, r) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + r * 1.3 + step) * (1 + (i % 7))));
    for (let i = 0; i < n; i++) exact[i]! += (vs[0]![i]! + vs[1]![i]! + vs[2]![i]!) / R;
    await Promise.all(rings.map((ring, r) => ringAllReduce(vs[r]!, ring, { bits: 4, step, feedback: fb[r] })));
    assert.equal(differing([vs[0]!], [vs[1]!]) + differing([vs[0]!], [vs[2]!]), 0);
    for (let i = 0; i < n; i++) got[i]! += vs[0]![i]!;
  }
  // With error feedback the summed error stays at one quantization step, not rounds x steps.
  const maxErr = Math.max(...got.map((v, i) => Math.abs(v - exact[i]!)));
  assert.ok(maxErr < 2, `accumulated error ${maxErr}`);
  pairs.forEach(([a, b]) => (a.close(), b.close()));
});

test('a stage failing mid-run stops every stage with its error; resuming from the stage checkpoints matches an uninterrupted run', async () => {
  const task = createTask(MLP);
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-pp-'));
  try {
    const base = { task, ranges: partition(task.layers(), 3), batch: 8, micro: 2, steps: 8, sgd, forward: fp32, backward: fp32, checkpointDir: dir, checkpointEvery: 2 };
    const whole = await runInProcess({ ...base, checkpointDir: undefined });
    await assert.rejects(runInProcess({ ...base, failAfter: 5 }), /stage \d: stopping after 5 steps/);
    const resumed = await runInProcess({ ...base, resume: true });
    assert.equal(resumed[2]!.firstStep, 4);
    assert.deepEqual(resumed[2]!.losses, whole[2]!.losses.slice(4));
    assert.equal(differing(stageParams(resumed), stageParams(whole)), 0);
    [...whole, ...resumed].forEach(disposeStage);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Final weights of every stage from the checkpoints a process run wrote. */
function checkpointValues(dir: string, stages: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let s = 0; s < stages; s++) {
    const { tensors } = decodeSafetensors(readFileSync(join(dir, `stage-${s}-replica-0.safetensors`)));
    for (const [name, t] of tensors) if (!name.startsWith('momentum.') && !/running/.test(name)) out.push(t.values as Float32Array);
  }
  return out;
}

for (const transport of ['tcp', 'zmq']) {
  test(`fp32 pipeline of stage processes over ${transport} is bit-identical to single-process training`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `slimgrad-${transport}-`));
    const lines: string[] = [];
    const write = process.stdout.write;
    // Capture printJson's report; anything else (the test runner's own output) passes through.
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
      typeof chunk === 'string' && chunk.startsWith('{"steps"') ? lines.push(chunk.trim()) > 0 : (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest)) as typeof process.stdout.write;
    try {
      const code = await pipeline.run(['--model', 'charlm', '--examples', '48', '--dim', '16', '--layers', '2', '--heads', '2', '--tokens', '8', '--stages', '3',
        '--steps', '3', '--batch', '8', '--micro', '2', '--lr', '0.05', '--momentum', '0.9', '--transport', transport, '--checkpoint-dir', dir, '--json']);
      assert.equal(code, 0);
      const task = createTask(LM);
      const ref = reference(task, 3, 8, 2);
      const out = JSON.parse(lines[lines.length - 1]!) as { losses: number[]; wireBytesPerStep: number };
      assert.deepEqual(out.losses, ref.losses);
      assert.equal(differing(checkpointValues(dir, 3), values(ref.params)), 0);
      assert.ok(out.wireBytesPerStep > 2 * 2 * 2 * 2048);
      ref.dispose();
    } finally {
      process.stdout.write = write;
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const transport of ['tcp', 'zmq']) test(`killing one stage process (${transport}) ends every stage within 10 s with an error naming it`, async () => {
  const entry = new URL('../../src/cli/stage-entry.ts', import.meta.url).pathname;
  // Ports the OS reports free (fixed ones derived from the pid could be taken by another process).
  const peers = (await Promise.all([0, 1, 2].map(() => freePort('127.0.0.1')))).map((p) => `127.0.0.1:${p}`).join(',');
  const procs = [0, 1, 2].map((rank) => {
    const p = spawn(process.execPath, ['--import', 'tsx', entry, '--model', 'mlp', '--stages', '3', '--steps', '100000', '--batch', '8', '--micro', '2', '--transport', transport, '--rank', String(rank), '--peers', peers], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { err: '' };
    p.stderr.on('data', (d: Buffer) => (out.err += d.toString()));
    const exited = new Promise<{ code: number | null; err: string; at: number }>((resolve) => p.on('exit', (code) => resolve({ code, err: out.err, at: performance.now() })));
    return { p, exited, out };
  });
  try {
    // Wait until the last stage reports training steps, then kill the middle one.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stages did not start training within 60 s (peers ${peers}); stderr: ${procs.map((x, r) => `[${r}] ${x.out.err.trim()}`).join(' ')}`)), 60_000);
      procs[2]!.p.stdout.on('data', (d: Buffer) => {
        if (/step 3\//.test(d.toString())) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const killedAt = performance.now();
    procs[1]!.p.kill('SIGKILL');
    const [s0, , s2] = await Promise.all(procs.map((x) => x.exited));
    for (const s of [s0!, s2!]) {
      assert.equal(s.code, 1);
      assert.match(s.err, /stage 1 \(127\.0\.0\.1:\d+\)/);
      assert.ok(s.at - killedAt < 10_000, `stopped ${(s.at - killedAt) / 1000} s after the kill`);
    }
  } finally {
    for (const x of procs) if (x.p.exitCode === null) x.p.kill('SIGKILL');
  }
});
