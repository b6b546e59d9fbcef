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
 * is cached per stage. ms per item, interleaved by `time`.
 */
export function sparseVsDense(d: DeployedModel, x: Float32Array, shape: number[], time: (fns: (() => void)[]) => number[]): { sparseMs: number; denseMs: number } {
  const bytes = encodeDeployed(d);
  const copy = (limits: { conv: number; dense: number }) => {
    const c = decodeDeployed(bytes);
    const prev = setSparseLimits(limits);
    runPacked(c, x, shape); // fixes the per-stage choice
    setSparseLimits(prev);
    return c;
  };
  const sparse = copy(SPARSE_MAX_DENSITY), dense = copy({ conv: 0, dense: 0 });
  const [sparseMs, denseMs] = time([() => void runPacked(sparse, x, shape), () => void runPacked(dense, x, shape)]).map((ms) => ms / shape[0]!) as [number, number];
  return { sparseMs, denseMs };
}
