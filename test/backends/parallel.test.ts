// parallelFor, the kernel calls of a block of work recorded and run as one job per thread: conv2d
// (forward, input and weight gradients, bias) gives the same bits at 1 and 3 threads and matches the
// reference backend; bodies that cannot be deferred are refused; long programs run in rounds.
// Every assert.ok has a message (see wasm.test.ts).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { grad } from '../../src/autograd/backward.js';
import { getBackend, kernels, setBackend, setThreads, getThreads, useFastestBackend } from '../../src/backends/index.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';
import { conv2d, type Conv2dOptions } from '../../src/ops/conv.js';
import { matmul, mul, sum, type MatmulAttrs } from '../../src/ops/index.js';
import { Rng } from '../../src/util/rng.js';
import { loadKernelModule, WasmKernels } from '../../src/backends/wasm/index.js';

useFastestBackend();
const initialThreads = getThreads();
after(() => setThreads(initialThreads));

function randomTensor(shape: number[], seed: number): Tensor {
  const rng = new Rng(seed, 3);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromValues(Float32Array.from({ length: n }, () => rng.normal()), shape);
}

/** conv2d's output and the gradients of sum(out * r) with respect to x, w and b, as arrays. */
function convAll(xShape: number[], wShape: number[], o: Conv2dOptions): Float32Array[] {
  return scope(() => {
    const x = randomTensor(xShape, 1), w = randomTensor(wShape, 2), b = randomTensor([wShape[0]!], 3);
    for (const t of [x, w, b]) t.requiresGrad = true;
    const out = conv2d(x, w, b, o);
    const r = randomTensor([...out.shape], 4);
    const grads = grad(sum(mul(out, r)), [x, w, b]);
    return [out, ...grads].map((t) => Float32Array.from(t!.values()));
  });
}

/** Runs fn, then puts back the backend that was active. */
function keepingBackend(fn: () => void): void {
  const previous = getBackend();
  try {
    fn();
  } finally {
    setBackend(previous);
  }
}

const CASES: { label: string; x: number[]; w: number[]; o: Conv2dOptions }[] = [
  // 20 images: chunks of 8, 8 and 4 (an uneven last block); LeNet-5's first layer.
  { label: 'lenet conv1, batch 20', x: [20, 1, 28, 28], w: [6, 1, 5, 5], o: { padding: 2 } },
  { label: 'stride 2 + padding, batch 11', x: [11, 3, 9, 9], w: [4, 3, 3, 3], o: { stride: 2, padding: 1 } },
  { label: 'groups 2, batch 5', x: [5, 4, 7, 7], w: [6, 2, 3, 3], o: { groups: 2, padding: 1 } },
];

test('conv2d forward and gradients: 1 and 3 threads bit-identical, both within tolerance of the reference', () =>
  keepingBackend(() => {
    for (const c of CASES) {
      setBackend('wasm');
      setThreads(1);
      const one = convAll(c.x, c.w, c.o);
      setThreads(3);
      const three = convAll(c.x, c.w, c.o);
      setBackend('reference');
      const want = convAll(c.x, c.w, c.o);
      ['out', 'dx', 'dw', 'db'].forEach((name, i) => {
        assert.deepEqual(three[i], one[i], `${c.label}: ${name} differs between 1 and 3 threads`);
        let worst = 0;
        for (let j = 0; j < want[i]!.length; j++) worst = Math.max(worst, Math.abs(one[i]![j]! - want[i]![j]!) / (1 + Math.abs(want[i]![j]!)));
        assert.ok(worst < 1e-4, `${c.label}: ${name} off the reference by ${worst}`);
      });
    }
  }));

test('parallelFor refuses a kernel that cannot be deferred (and recovers); the reference runs every index in slot 0', () =>
  keepingBackend(() => {
    setBackend('wasm');
    setThreads(2);
    const k = kernels('float32');
    const t = Tensor.empty([4]);
    assert.equal(k.parallelSlots(5), 2);
    assert.throws(() => k.parallelFor(2, () => k.fill(t, 1)), /parallelFor: kernel fill cannot run inside a parallel body/);
    k.fill(t, 2); // not recording any more: runs now
    assert.deepEqual(t.toArray(), [2, 2, 2, 2]);
    setBackend('reference');
    const seen: [number, number][] = [];
    kernels('float32').parallelFor(3, (i, slot) => seen.push([i, slot]));
    assert.deepEqual(seen, [[0, 0], [1, 0], [2, 0]]);
    assert.equal(kernels('float32').parallelSlots(3), 1);
  }));

test('a parallelFor whose blocks hold more calls than a job carries runs them in rounds, in order', () => {
  const module = loadKernelModule('simd');
  assert.ok(module, 'build/simd kernels missing: run npm run build:kernels');
  const k = new WasmKernels(module);
  k.setThreads(2);
  try {
    // 600 dependent adds per block (acc += ones, one element at a time... over 16 lanes): far more
    // arguments than one job's program slot, so the pool runs each block's calls over several rounds.
    const acc = Tensor.empty([2, 16]), ones = fromValues(new Float32Array(16).fill(1), [16]);
    k.parallelFor(2, (i) => {
      const row = acc.view([16], undefined, i * 16);
      for (let r = 0; r < 600; r++) k.binary('add', row, ones, row);
      row.dispose();
    });
    assert.ok(k.poolRunning, 'the pool should have run the blocks');
    assert.deepEqual(acc.toArray(), new Array(32).fill(600));
  } finally {
    k.shutdown();
  }
});

/** The gradients of sum(matmul(a, b, t) * r) for a and b, with or without a recorded backward graph. */
function matmulGrads(sa: number[], sb: number[], t: MatmulAttrs, createGraph: boolean): Float32Array[] {
  return scope(() => {
    const a = randomTensor(sa, 5), b = randomTensor(sb, 6);
    a.requiresGrad = b.requiresGrad = true;
    const out = matmul(a, b, t);
    const r = randomTensor([...out.shape], 7);
    return grad(sum(mul(out, r)), [a, b], { createGraph }).map((g) => Float32Array.from(g!.values()));
  });
}

test('matmul backward runs dA and dB as one two-index parallelFor: the same bits as the two matmul ops, at 1 and 3 threads', () =>
  keepingBackend(() => {
    // 2 x 64*300*200 multiply-adds: above the GEMM split threshold, so the pair is one job at 3 threads.
    const cases: [number[], number[], MatmulAttrs][] = [
      [[64, 300], [200, 300], { transB: true }], // a Linear layer: x Wᵀ
      [[64, 300], [300, 200], {}],
      [[300, 64], [300, 200], { transA: true }],
      [[300, 64], [200, 300], { transA: true, transB: true }],
    ];
    setBackend('wasm');
    setThreads(3);
    const k = kernels('float32');
    assert.equal(k.parallelSlots(2, { kind: 'gemm', units: 2 * 64 * 300 * 200 }), 2, 'the pair should get two threads');
    assert.equal(k.parallelSlots(2, { kind: 'gemm', units: 1000 }), 1, 'a small pair should stay on the calling thread');
    for (const [sa, sb, t] of cases) {
      const label = JSON.stringify(t);
      setThreads(3);
      const paired = matmulGrads(sa, sb, t, false);
      // createGraph records the backward: the two matmul ops run instead of the pair.
      const ops = matmulGrads(sa, sb, t, true);
      setThreads(1);
      const one = matmulGrads(sa, sb, t, false);
      ['dA', 'dB'].forEach((name, i) => {
        assert.deepEqual(paired[i], ops[i], `${label}: ${name} of the paired GEMMs differs from the matmul ops'`);
        assert.deepEqual(paired[i], one[i], `${label}: ${name} differs between 3 threads and 1`);
      });
    }
  }));

test('conv2d bias gradient: computed in the weight-gradient job (w needs a gradient) or on its own (it does not), the same bits', () =>
  keepingBackend(() => {
    setBackend('wasm');
    for (const threads of [1, 3]) {
      setThreads(threads);
      for (const c of CASES) {
        const dbOf = (wantW: boolean) => scope(() => {
          const x = randomTensor(c.x, 1), w = randomTensor(c.w, 2), b = randomTensor([c.w[0]!], 3);
          b.requiresGrad = true;
          w.requiresGrad = wantW;
          const out = conv2d(x, w, b, c.o);
          return Float32Array.from(grad(sum(mul(out, randomTensor([...out.shape], 4))), [b])[0]!.values());
        });
        assert.deepEqual(dbOf(true), dbOf(false), `${c.label}, ${threads} thread(s): db with dw differs from db alone`);
      }
    }
  }));
