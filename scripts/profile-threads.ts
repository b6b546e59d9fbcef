/**
 * Where a training step's time goes with the wasm kernel threads, for tuning them:
 * `node --import tsx scripts/profile-threads.ts [model] [threads] [steps]` (model: lenet, mlp,
 * cnn, resnet20; the `bench engine` step: SGD, batch 64, a fixed random batch).
 *
 * Prints per step: wall time, process CPU, the calling thread's CPU and the worker threads' CPU
 * (Linux /proc schedstat, summed over the run; what a busy machine inflates least: on a quiet
 * 2-core machine a step takes about the calling thread's CPU plus its waits at the joins), the
 * pool jobs by their kernels; then each kernel's wall time per step on the calling thread (a
 * split kernel's includes its join; parallelFor bodies count as their kernels, the rest of a
 * parallelFor, recording the workers' blocks and the join, as one line).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { kernels, setThreads, useFastestBackend } from '../src/backends/index.js';
import { ThreadPool, type PoolCall } from '../src/backends/wasm/pool.js';
import { Tensor } from '../src/core/tensor.js';
import { slimgradStep, type TrainModel } from '../bench/engine-train.js';

const model = (process.argv[2] ?? 'lenet') as TrainModel;
const threads = Number(process.argv[3] ?? 2);
const steps = Number(process.argv[4] ?? 30);
useFastestBackend();
setThreads(threads);

/** CPU ms of thread `tid` of this process (0 where /proc is missing). */
const cpuOf = (tid: number): number => {
  const f = `/proc/self/task/${tid}/schedstat`;
  return existsSync(f) ? Number(readFileSync(f, 'utf8').split(' ')[0]) / 1e6 : 0;
};
const allThreads = (): Map<number, number> => new Map(existsSync('/proc/self/task') ? readdirSync('/proc/self/task').map((t) => [Number(t), cpuOf(Number(t))]) : []);

// The workers: the threads (other than this one) that gain CPU over a large split GEMM.
const before = allThreads();
const big = Tensor.empty([512 * 512]), out = Tensor.empty([512 * 512]);
for (let i = 0; i < 10; i++) kernels('float32').gemm(big, big, out, { batch: 1, m: 512, n: 512, k: 512, transA: false, transB: false, accumulate: false, aStride: 0, bStride: 0 });
const workers = [...allThreads()].filter(([t, v]) => t !== process.pid && before.has(t) && v - before.get(t)! > 20).map(([t]) => t);
big.dispose();
out.dispose();

const k = kernels('float32') as unknown as Record<string, (...a: unknown[]) => unknown>;
const times = new Map<string, { ms: number; calls: number }>();
let depth = 0, measuring = false, inner = 0;
const add = (name: string, ms: number, calls: number): void => {
  const s = times.get(name) ?? { ms: 0, calls: 0 };
  s.ms += ms;
  s.calls += calls;
  times.set(name, s);
};
// parallelFor: its kernels count as themselves; the rest of its time (recording the workers'
// blocks, waiting at the join) as 'parallelFor: record + join'.
const parallelFor = k.parallelFor!;
k.parallelFor = (...args: unknown[]) => {
  if (depth > 0 || !measuring) return parallelFor(...args);
  const t0 = performance.now(), inner0 = inner;
  try {
    return parallelFor(...args);
  } finally {
    add('parallelFor: record + join', performance.now() - t0 - (inner - inner0), 1);
  }
};
for (const name of Object.keys(k)) {
  const f = k[name]!;
  if (typeof f !== 'function' || name === 'parallelFor' || name === 'parallelSlots') continue;
  k[name] = (...args: unknown[]) => {
    if (depth > 0 || !measuring) return f(...args);
    depth++;
    const t0 = performance.now();
    try {
      return f(...args);
    } finally {
      depth--;
      const ms = performance.now() - t0;
      inner += ms;
      add(name, ms, 1);
    }
  };
}
const jobs = new Map<string, number>();
const proto = ThreadPool.prototype as unknown as { runJob(programs: PoolCall[][], part0: () => void): void };
const runJob = proto.runJob;
proto.runJob = function (programs, part0) {
  if (measuring) {
    const key = [...new Set(programs.slice(1).flat().map((c) => c.op))].join('+');
    jobs.set(key, (jobs.get(key) ?? 0) + 1);
  }
  return runJob.call(this, programs, part0);
};

const step = slimgradStep(model);
for (let i = 0; i < 3; i++) step();
measuring = true;
const main0 = cpuOf(process.pid), workers0 = workers.map(cpuOf), cpu0 = process.cpuUsage(), t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const wall = (performance.now() - t0) / steps;
const cpu = process.cpuUsage(cpu0);
const mainCpu = (cpuOf(process.pid) - main0) / steps;
const workerCpu = workers.reduce((s, t, i) => s + cpuOf(t) - workers0[i]!, 0) / steps;
const perStep = (v: number) => (v / steps).toFixed(2);
const jobCount = [...jobs.values()].reduce((a, b) => a + b, 0);
console.log(`${model}, ${threads} thread(s), batch 64: ${wall.toFixed(2)} ms/step wall (${(64000 / wall).toFixed(0)} samples/s); CPU per step: process ${((cpu.user + cpu.system) / 1000 / steps).toFixed(2)} ms, calling thread ${mainCpu.toFixed(2)} ms, workers ${workerCpu.toFixed(2)} ms`);
console.log(`pool jobs per step: ${perStep(jobCount)}${jobCount ? ` (${[...jobs].map(([key, n]) => `${key} ${perStep(n)}`).join(', ')})` : ''}`);
let kernelMs = 0;
for (const { ms } of times.values()) kernelMs += ms;
console.log(`kernels ${perStep(kernelMs)} ms/step on the calling thread (joins included), the rest ${(wall - kernelMs / steps).toFixed(2)} ms (autograd, allocation, JavaScript)`);
for (const [name, { ms, calls }] of [...times].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${name.padEnd(18)} ${perStep(ms).padStart(8)} ms  ${perStep(calls).padStart(7)} calls`);
process.exit(0);
