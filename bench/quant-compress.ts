/**
 * Rows of `slimgrad bench quant` for compressed float networks (issue 14): `prune:S` (gradual
 * global magnitude pruning to sparsity S) and `prune-ch:S` (structured: a fraction S of the
 * output channels of every prunable layer removed), both on LeNet-5 trained like its float twin.
 * quant.ts asks `compressedVariant(preset)` for how to build and train a preset it does not find
 * among the quantized presets; other compression methods add a variant here.
 */
import { createModel } from '../src/nn/models.js';
import type { Module } from '../src/nn/module.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { decodeDeployed, encodeDeployed, Pruner, runPacked, setSparseLimits, SPARSE_MAX_DENSITY, withPruning, type DeployedModel } from '../src/quant/index.js';

export interface CompressedVariant {
  /** The untrained model (same seed as the float twin). */
  build(seed: number): Module;
  /** Hooks the optimizer (pruning masks after every step) for a run of `steps` steps. */
  train(optimizer: Optimizer, model: Module, steps: number): void;
  /** Brings an untrained model to its final compressed form (size rows without training). */
  finalize(model: Module): void;
}

/** `prune:S` and `prune-ch:S` on `model` (input [1, 28, 28], 10 classes), or null for other names. */
export function compressedVariant(preset: string, model: string, input: number[]): CompressedVariant | null {
  const m = /^(prune|prune-ch):(0?\.\d+|0)$/.exec(preset);
  if (!m) return null;
  const o = { sparsity: Number(m[2]), structured: m[1] === 'prune-ch' };
  return {
    build: (seed) => createModel(model, input, 10, seed),
    train: (optimizer, net, steps) => void withPruning(optimizer, net, steps, o),
    finalize: (net) => new Pruner(net, 1, { ...o, begin: 0, end: 0 }).update(1),
  };
}

/** Whether `preset` names a compressed variant (for --presets validation). */
export const isCompressedPreset = (preset: string): boolean => compressedVariant(preset, 'lenet', [1, 28, 28]) !== null;

/**
 * The same pruned deployed model timed with the sparse GEMM where SPARSE_MAX_DENSITY picks it
 * (sparseMs) and with every layer on the dense path (denseMs); each a fresh copy, since the choice
 * is cached per stage. ms per item, interleaved by `time` (fastest call).
 */
export function sparseVsDense(d: DeployedModel, x: Float32Array, shape: number[], time: (fns: (() => void)[]) => number[], limits: Readonly<Record<'conv' | 'dense', number>> = SPARSE_MAX_DENSITY): { sparseMs: number; denseMs: number } {
  const bytes = encodeDeployed(d);
  const copy = (limits: { conv: number; dense: number }) => {
    const c = decodeDeployed(bytes);
    const prev = setSparseLimits(limits);
    runPacked(c, x, shape); // fixes the per-stage choice
    setSparseLimits(prev);
    return c;
  };
  const sparse = copy(limits), dense = copy({ conv: 0, dense: 0 });
  const [sparseMs, denseMs] = time([() => void runPacked(sparse, x, shape), () => void runPacked(dense, x, shape)]).map((ms) => ms / shape[0]!) as [number, number];
  return { sparseMs, denseMs };
}

export interface SparseRow { layer: string; batch: number; density: number; sparseMs: number; denseMs: number; speedup: number }

/**
 * The crossover behind SPARSE_MAX_DENSITY: one pruned layer of LeNet-5's shapes (conv 6 -> 16 5x5
 * on 14x14, dense 400 -> 120) at several densities, run by runPacked on the sparse GEMM and on
 * the dense path, ms per item at batch 1 and 32 (interleaved by `time`).
 */
export function sparseCrossoverRows(time: (fns: (() => void)[]) => number[], seed = 1): SparseRow[] {
  let state = seed;
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const rows: SparseRow[] = [];
  const layers = [
    { layer: 'conv 6->16 5x5 @14x14', stage: { op: 'conv' as const, outC: 16, inC: 6, k: 5 }, input: [6, 14, 14] },
    { layer: 'dense 400->120', stage: { op: 'dense' as const, outC: 120, inC: 400, k: 0 }, input: [400] },
  ];
  for (const { layer, stage, input } of layers) {
    const K = stage.op === 'conv' ? stage.inC * stage.k * stage.k : stage.inC;
    for (const density of [0.05, 0.1, 0.2, 0.3, 0.5]) {
      const w = Float32Array.from({ length: stage.outC * K }, () => (random() < density ? random() - 0.5 : 0));
      const model: DeployedModel = {
        inputShape: input,
        stages: [{ ...stage, kernel: 'float', stride: 1, pad: 0, weights: w, inputStep: 0, mul: new Float32Array(stage.outC).fill(1), bias: new Float32Array(stage.outC) }],
      };
      for (const batch of [1, 32]) {
        const shape = [batch, ...input], x = Float32Array.from({ length: batch * input.reduce((a, b) => a * b, 1) }, random);
        const { sparseMs, denseMs } = sparseVsDense(model, x, shape, time, { conv: 1, dense: 1 });
        rows.push({ layer, batch, density, sparseMs, denseMs, speedup: denseMs / sparseMs });
      }
    }
  }
  return rows;
}
