// bench engine's ratio table: PyTorch rows pair with slimgrad at the same thread count; thread
// scaling rows put each engine at N threads over itself at 1; a peer that could not run gives a
// null ratio (never a number made up from a missing figure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerRatios, type GemmRow } from '../../bench/engine.js';
import type { TrainRow } from '../../bench/engine-train.js';

const train = (engine: TrainRow['engine'], threads: number, samplesPerSec: number | null): TrainRow => ({
  model: 'cnn', engine, threads, batch: 64, samplesPerSec, peakRssBytes: null, cpuMsPerStep: null, error: samplesPerSec === null ? 'PyTorch not installed' : null,
});

test('PyTorch ratios pair equal thread counts; tfjs ratios use slimgrad at its best thread count; scaling over 1 thread', () => {
  const gemm: GemmRow[] = [
    { engine: 'slimgrad', size: 64, variant: 'NN', threads: 1, gflops: 40 },
    { engine: 'slimgrad', size: 64, variant: 'NN', threads: 2, gflops: 80 },
    { engine: 'pytorch', size: 64, variant: 'NN', threads: 1, gflops: 100 },
    { engine: 'pytorch', size: 64, variant: 'NN', threads: 2, gflops: null, error: 'timed out after 1 s' },
  ];
  const rows = peerRatios(gemm, [train('slimgrad', 1, 900), train('slimgrad', 2, 1500), train('tfjs-cpu', 1, 3), train('pytorch', 1, 1200), train('pytorch', 2, 3000)]);
  assert.deepEqual(rows, [
    { kind: 'gemm', case: '64 NN', peer: 'slimgrad 1 thread', threads: 2, ratio: 2 },
    { kind: 'gemm', case: '64 NN', peer: 'pytorch', threads: 1, ratio: 0.4 },
    { kind: 'gemm', case: '64 NN', peer: 'pytorch', threads: 2, ratio: null },
    { kind: 'train', case: 'cnn', peer: 'tfjs-cpu', threads: null, ratio: 500 },
    { kind: 'train', case: 'cnn', peer: 'slimgrad 1 thread', threads: 2, ratio: 1500 / 900 },
    { kind: 'train', case: 'cnn', peer: 'pytorch', threads: 1, ratio: 0.75 },
    { kind: 'train', case: 'cnn', peer: 'pytorch', threads: 2, ratio: 0.5 },
    { kind: 'train', case: 'cnn', peer: 'pytorch 1 thread', threads: 2, ratio: 2.5 },
  ]);
  const missing = peerRatios([], [train('slimgrad', 1, 900), train('pytorch', 1, null)]);
  assert.deepEqual(missing, [{ kind: 'train', case: 'cnn', peer: 'pytorch', threads: 1, ratio: null }]);
});
