/**
 * Larq-style model summary plus a deployment report: parameters per bit-width, memory, float-32
 * equivalent, compression ratio, MACs by precision, and which layers run on a packed/integer
 * kernel versus float fallback.
 *
 * @example
 * const s = summary(larqMnistBnn(), [1, 28, 28]);
 * console.log(formatSummary(s));   // ... model size 13.19 KiB (float-32 equivalent 365.45 KiB) ...
 */
import { noGrad } from '../autograd/mode.js';
import { scope } from '../core/scope.js';
import { Tensor } from '../core/tensor.js';
import { BatchNorm, Conv2d, Linear, Sequential } from '../nn/layers.js';
import { BasicBlock } from '../nn/models.js';
import type { Module } from '../nn/module.js';
import { isQuantLayer } from './layers.js';
import { SPARSE_MAX_DENSITY } from './packed.js';
import { layerPlan, type LayerKernel } from './plan.js';
import { channelGroups, deadChannels } from './prune.js';

export interface LayerSummary {
  path: string;
  type: string;
  /** Precision of the layer's input (32 = float). */
  inputBits: number;
  outputShape: number[];
  /** Parameter counts keyed by bit-width (BatchNorm counted as 2 folded values per channel). */
  params: Record<number, number>;
  memoryBits: number;
  /** Multiply-accumulates per example and their precision (max of input and weight bits). */
  macs: number;
  macBits: number;
  kernel: LayerKernel | null;
  packedCompute: boolean;
  /** nested_weights: the width read now (its weights are stored at 8 bits). */
  readBits?: number;
  /** Fraction of this layer's deployed weights that are 0 (pruning, ternary zeros), and the output channels convert removes. */
  sparsity: number;
  /** Weights of the layer as built (before channel removal). */
  weights: number;
  removedChannels: number;
  /** Weights stored with the sparse encoding (mask + non-zeros) because it is smaller; they run on the sparse GEMM when `macKind` says so. */
  sparseStorage: boolean;
  /** What does the MACs: the layer's kernel, or 'sparse' (non-zeros only, on the sparse GEMM). */
  macKind: string;
  note?: string;
}

export interface ModelSummary {
  layers: LayerSummary[];
  paramsByBits: Record<number, number>;
  totalParams: number;
  memoryBits: number;
  memoryKiB: number;
  /** The same parameters all in float32. */
  floatKiB: number;
  compressionRatio: number;
  macsByBits: Record<number, number>;
  /** MACs per example by what runs them (binary, int8, float, ternary_weights, sparse, ...). */
  macsByKind: Record<string, number>;
  /** Fraction of zero weights over all conv/dense layers as deployed. */
  sparsity: number;
  /** Fraction of MACs at 1 bit. */
  binaryMacFraction: number;
  /** Paths of conv/dense layers on packed or integer kernels, and on float fallback. */
  packedLayers: string[];
  fallbackLayers: string[];
}

const KIB_BITS = 8 * 1024;
const addTo = (r: Record<number, number>, bits: number, n: number): void => {
  if (n) r[bits] = (r[bits] ?? 0) + n;
};

/** Summary of a Sequential model for one example of shape `inputShape` (without the batch axis). */
export function summary(model: Module, inputShape: number[]): ModelSummary {
  if (!(model instanceof Sequential)) throw new Error(`summary: expects a Sequential model, got ${model.constructor.name}`);
  const wasTraining = model.training;
  model.eval();
  const layers: LayerSummary[] = [];
  // Structured pruning: channels convert removes, and the inputs of the layers reading them.
  const removedOut = new Map<Module, number>(), removedIn = new Map<Module, number>();
  for (const g of channelGroups(model)) {
    const dead = deadChannels(g).length;
    if (!dead) continue;
    removedOut.set(g.layer, dead);
    removedIn.set(g.next, dead / g.layer.weight.shape[0]!);
  }
  // Leaf layers in order with their output shapes; a residual block's body and shortcut read its input.
  const walk = (mods: Module[], h: Tensor, prefix: string): Tensor => {
    mods.forEach((layer, i) => {
      const path = `${prefix}${i}`;
      if (layer instanceof BasicBlock) {
        walk(layer.body.layers, h, `${path}.body.`);
        if (layer.shortcut) walk(layer.shortcut.layers, h, `${path}.shortcut.`);
        layers.push(layerSummary(layer, path, (h = layer.call(h)).shape.slice(1), removedOut, removedIn));
        return;
      }
      h = layer.call(h);
      layers.push(layerSummary(layer, path, h.shape.slice(1), removedOut, removedIn));
    });
    return h;
  };
  try {
    noGrad(() => scope(() => void walk(model.layers, Tensor.empty([1, ...inputShape]), '')));
  } finally {
    model.train(wasTraining);
  }
  const paramsByBits: Record<number, number> = {}, macsByBits: Record<number, number> = {}, macsByKind: Record<string, number> = {};
  let weights = 0, zeros = 0;
  for (const l of layers) {
    for (const [b, n] of Object.entries(l.params)) addTo(paramsByBits, Number(b), n);
    addTo(macsByBits, l.macBits, l.macs);
    if (l.kernel !== null) {
      weights += l.weights;
      zeros += l.weights * l.sparsity;
      if (l.macs) macsByKind[l.macKind] = (macsByKind[l.macKind] ?? 0) + l.macs;
    }
  }
  const totalParams = Object.values(paramsByBits).reduce((a, b) => a + b, 0);
  const memoryBits = layers.reduce((a, l) => a + l.memoryBits, 0);
  const totalMacs = Object.values(macsByBits).reduce((a, b) => a + b, 0);
  const convOrDense = layers.filter((l) => l.kernel !== null);
  return {
    layers,
    paramsByBits,
    totalParams,
    memoryBits,
    memoryKiB: memoryBits / KIB_BITS,
    floatKiB: (totalParams * 32) / KIB_BITS,
    compressionRatio: memoryBits ? (totalParams * 32) / memoryBits : 1,
    macsByBits,
    macsByKind,
    sparsity: weights ? zeros / weights : 0,
    binaryMacFraction: totalMacs ? (macsByBits[1] ?? 0) / totalMacs : 0,
    packedLayers: convOrDense.filter((l) => l.packedCompute).map((l) => l.path),
    fallbackLayers: convOrDense.filter((l) => !l.packedCompute).map((l) => l.path),
  };
}

/** Non-zero weights as deployed: float values (latent or fake-quantized), ternary codes (|w| ≥ Δ); null for other kernels. */
function deployedNonzeros(layer: Linear | Conv2d, kernel: LayerKernel): number | null {
  if (kernel !== 'float' && kernel !== 'ternary_weights') return null;
  return noGrad(() => scope(() => {
    const kq = isQuantLayer(layer) ? layer.kernelQuantizer : null;
    const delta = kernel === 'ternary_weights' ? kq!.deployment().threshold!(layer.weight) : 0;
    const v = kq && kernel === 'float' ? kq.forward(layer.weight).values() : layer.weight.values();
    let nnz = 0;
    for (let i = 0; i < v.length; i++) if (kernel === 'float' ? v[i] !== 0 : Math.abs(v[i]!) >= delta) nnz++;
    return nnz;
  }));
}

const noMacs = { macs: 0, macBits: 32, kernel: null, packedCompute: false, sparsity: 0, weights: 0, removedChannels: 0, sparseStorage: false, macKind: '-' };

function layerSummary(layer: Module, path: string, outShape: number[], removedOut: Map<Module, number>, removedIn: Map<Module, number>): LayerSummary {
  const base = { path, type: layer.constructor.name === 'Lambda' ? (layer as unknown as { label: string }).label : layer.constructor.name, outputShape: outShape };
  const plan = layerPlan(layer);
  if (plan && (layer instanceof Linear || layer instanceof Conv2d)) {
    const full = layer.weight.size, fullOut = layer.weight.shape[0]!;
    // Rows and columns convert keeps (structured pruning removes dead channels and their inputs).
    const removed = removedOut.get(layer) ?? 0, out = fullOut - removed;
    const keptIn = 1 - (removedIn.get(layer) ?? 0);
    const rows = out, k = Math.round((full / fullOut) * keptIn), weights = rows * k;
    const nnz = deployedNonzeros(layer, plan.kernel);
    const sparsity = nnz === null ? 0 : 1 - nnz / full;
    // Stored bits: the dense width, or a 1-bit mask plus the non-zeros (32-bit floats, 1 sign bit) when smaller.
    // Removed rows hold no non-zeros; removed input columns take their share (estimated).
    const nz = nnz === null ? weights : Math.min(weights, Math.round(nnz * keptIn));
    const sparseBits = nnz === null ? Infinity : weights + nz * (plan.kernel === 'float' ? 32 : 1);
    const sparseStorage = sparseBits < weights * plan.weightBits;
    const params: Record<number, number> = {};
    addTo(params, plan.weightBits, full);
    // Float32 extras: bias, per-channel alpha, learned quantizer steps.
    const extras = (layer.bias ? out : 0) + (plan.channelScale ? out : 0) +
      // (Sign quantizers store none: FDA's noise-adaptation weights only train.)
      (isQuantLayer(layer) ? [layer.inputQuantizer, layer.kernelQuantizer].reduce((n, q) => n + (q && q.deployment().values !== 'sign' ? q.parameters().reduce((a, p) => a + p.size, 0) : 0), 0) : 0);
    addTo(params, 32, (layer.bias?.size ?? 0) + (plan.channelScale ? fullOut : 0) + extras - (layer.bias ? out : 0) - (plan.channelScale ? out : 0));
    const outputPixels = layer instanceof Conv2d ? outShape[1]! * outShape[2]! : 1;
    const op = layer instanceof Conv2d ? 'conv' : 'dense';
    const sparseMacs = nnz !== null && nz / Math.max(1, weights) <= SPARSE_MAX_DENSITY[op];
    const denseMacs = plan.macsPerOutput === undefined ? weights * outputPixels : Math.round(plan.macsPerOutput * out * outputPixels);
    return {
      ...base, inputBits: plan.inputBits, params, memoryBits: Math.min(sparseBits, Math.round(weights * plan.weightBits)) + extras * 32,
      macs: sparseMacs ? nz * outputPixels : denseMacs, macBits: Math.max(plan.inputBits, Math.ceil(plan.readBits ?? plan.weightBits)),
      kernel: plan.kernel, packedCompute: plan.packedCompute, note: plan.note,
      ...(plan.readBits !== undefined ? { readBits: plan.readBits } : {}),
      sparsity: plan.sparsity ?? sparsity, weights: full, removedChannels: removed, sparseStorage, macKind: sparseMacs ? 'sparse' : plan.kernel,
    };
  }
  if (layer instanceof BatchNorm) {
    // (gamma, var) and (beta, mean) fold to one scale and one shift per channel.
    return { ...base, ...noMacs, inputBits: 32, params: { 32: 2 * layer.channels }, memoryBits: 64 * layer.channels };
  }
  if (layer instanceof BasicBlock) return { ...base, ...noMacs, inputBits: 32, params: {}, memoryBits: 0, type: 'residual add' };
  if (layer.parameterCount() > 0) throw new Error(`summary: layer ${path} (${base.type}) has parameters but no summary rule`);
  return { ...base, ...noMacs, inputBits: 32, params: {}, memoryBits: 0 };
}

const fmtNum = (n: number): string => n.toLocaleString('en-US');

/** The summary as text: one row per layer, then totals and the deployment report. */
export function formatSummary(s: ModelSummary): string {
  const rows = s.layers.map((l) => [
    l.path, l.type, String(l.inputBits), `[${l.outputShape.join(', ')}]`,
    Object.entries(l.params).map(([b, n]) => `${fmtNum(n)}@${Number(Number(b).toFixed(2))}b`).join(' ') || '-',
    (l.memoryBits / KIB_BITS).toFixed(2), l.macs ? `${fmtNum(l.macs)}@${l.macBits}b` : '-',
    (l.kernel === null ? '-' : l.packedCompute || (l.kernel === 'float' && !l.note) ? l.kernel : `${l.kernel} (float fallback)`) +
      (l.readBits !== undefined ? ` read at ${l.readBits} bit` : '') + (l.sparsity ? `, ${(100 * l.sparsity).toFixed(0)} % sparse` : ''),
  ]);
  const head = ['layer', 'type', 'in bits', 'output', 'params', 'KiB', 'MACs', 'deployed kernel'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ''];
  out.push(`params: ${fmtNum(s.totalParams)} (${Object.entries(s.paramsByBits).map(([b, n]) => `${fmtNum(n)} at ${Number(Number(b).toFixed(2))} bit`).join(', ')})`);
  out.push(`model size ${s.memoryKiB.toFixed(2)} KiB (float-32 equivalent ${s.floatKiB.toFixed(2)} KiB), compression ${s.compressionRatio.toFixed(2)}x`);
  out.push(`MACs: ${Object.entries(s.macsByBits).map(([b, n]) => `${fmtNum(n)} at ${b} bit`).join(', ')}; ${(100 * s.binaryMacFraction).toFixed(1)} % binary; by kernel: ${Object.entries(s.macsByKind).map(([k, n]) => `${k} ${fmtNum(n)}`).join(', ')}`);
  if (s.sparsity > 0) out.push(`sparsity: ${(100 * s.sparsity).toFixed(1)} % of conv/dense weights are 0; ${s.layers.filter((l) => l.sparseStorage).length} layers stored sparse, ${s.layers.reduce((n, l) => n + l.removedChannels, 0)} channels removed`);
  out.push(`packed/integer kernels: ${s.packedLayers.join(', ') || 'none'}; float fallback: ${s.fallbackLayers.join(', ') || 'none'}`);
  for (const l of s.layers) if (l.note) out.push(`  layer ${l.path}: ${l.note}`);
  return out.join('\n');
}
