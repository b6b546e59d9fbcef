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
import type { Module } from '../nn/module.js';
import { BasicBlock } from '../nn/models.js';
import { isQuantLayer } from './layers.js';
import { layerPlan, type LayerKernel } from './plan.js';

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
  try {
    noGrad(() => scope(() => void summarize(model.layers, '', Tensor.empty([1, ...inputShape]), layers)));
  } finally {
    model.train(wasTraining);
  }
  const paramsByBits: Record<number, number> = {}, macsByBits: Record<number, number> = {};
  for (const l of layers) {
    for (const [b, n] of Object.entries(l.params)) addTo(paramsByBits, Number(b), n);
    addTo(macsByBits, l.macBits, l.macs);
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
    binaryMacFraction: totalMacs ? (macsByBits[1] ?? 0) / totalMacs : 0,
    packedLayers: convOrDense.filter((l) => l.packedCompute).map((l) => l.path),
    fallbackLayers: convOrDense.filter((l) => !l.packedCompute).map((l) => l.path),
  };
}

/** Rows of `layers` run on `h` (a ResNet BasicBlock: the rows of its body and shortcut); returns the output. */
function summarize(layers: readonly Module[], prefix: string, h: Tensor, out: LayerSummary[]): Tensor {
  layers.forEach((layer, i) => {
    const path = `${prefix}${i}`;
    if (layer instanceof BasicBlock) {
      summarize(layer.body.layers, `${path}.body.`, h, out);
      if (layer.shortcut) summarize(layer.shortcut.layers, `${path}.shortcut.`, h, out);
    }
    h = layer.call(h);
    if (!(layer instanceof BasicBlock)) out.push(layerSummary(layer, path, h.shape.slice(1)));
  });
  return h;
}

function layerSummary(layer: Module, path: string, outShape: number[]): LayerSummary {
  const base = { path, type: layer.constructor.name === 'Lambda' ? (layer as unknown as { label: string }).label : layer.constructor.name, outputShape: outShape };
  const plan = layerPlan(layer);
  if (plan && (layer instanceof Linear || layer instanceof Conv2d)) {
    const weights = layer.weight.size;
    const out = layer.weight.shape[0]!;
    const params: Record<number, number> = {};
    addTo(params, plan.weightBits, weights);
    // Float32 extras: bias, per-channel alpha, learned quantizer steps.
    const extras = (layer.bias?.size ?? 0) + (plan.channelScale ? out : 0) +
      (isQuantLayer(layer) ? [layer.inputQuantizer, layer.kernelQuantizer].reduce((n, q) => n + (q?.parameters().reduce((a, p) => a + p.size, 0) ?? 0), 0) : 0);
    addTo(params, 32, extras);
    const outputPixels = layer instanceof Conv2d ? outShape[1]! * outShape[2]! : 1;
    return {
      ...base, inputBits: plan.inputBits, params, memoryBits: weights * plan.weightBits + extras * 32,
      macs: weights * outputPixels, macBits: Math.max(plan.inputBits, plan.weightBits),
      kernel: plan.kernel, packedCompute: plan.packedCompute, note: plan.note,
    };
  }
  if (layer instanceof BatchNorm) {
    // (gamma, var) and (beta, mean) fold to one scale and one shift per channel.
    return { ...base, inputBits: 32, params: { 32: 2 * layer.channels }, memoryBits: 64 * layer.channels, macs: 0, macBits: 32, kernel: null, packedCompute: false };
  }
  if (layer.parameterCount() > 0) throw new Error(`summary: layer ${path} (${base.type}) has parameters but no summary rule`);
  return { ...base, inputBits: 32, params: {}, memoryBits: 0, macs: 0, macBits: 32, kernel: null, packedCompute: false };
}

const fmtNum = (n: number): string => n.toLocaleString('en-US');

/** The summary as text: one row per layer, then totals and the deployment report. */
export function formatSummary(s: ModelSummary): string {
  const rows = s.layers.map((l) => [
    l.path, l.type, String(l.inputBits), `[${l.outputShape.join(', ')}]`,
    Object.entries(l.params).map(([b, n]) => `${fmtNum(n)}@${b}b`).join(' ') || '-',
    (l.memoryBits / KIB_BITS).toFixed(2), l.macs ? `${fmtNum(l.macs)}@${l.macBits}b` : '-',
    l.kernel === null ? '-' : l.packedCompute || (l.kernel === 'float' && !l.note) ? l.kernel : `${l.kernel} (float fallback)`,
  ]);
  const head = ['layer', 'type', 'in bits', 'output', 'params', 'KiB', 'MACs', 'deployed kernel'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ''];
  out.push(`params: ${fmtNum(s.totalParams)} (${Object.entries(s.paramsByBits).map(([b, n]) => `${fmtNum(n)} at ${b} bit`).join(', ')})`);
  out.push(`model size ${s.memoryKiB.toFixed(2)} KiB (float-32 equivalent ${s.floatKiB.toFixed(2)} KiB), compression ${s.compressionRatio.toFixed(2)}x`);
  out.push(`MACs: ${Object.entries(s.macsByBits).map(([b, n]) => `${fmtNum(n)} at ${b} bit`).join(', ')}; ${(100 * s.binaryMacFraction).toFixed(1)} % binary`);
  out.push(`packed/integer kernels: ${s.packedLayers.join(', ') || 'none'}; float fallback: ${s.fallbackLayers.join(', ') || 'none'}`);
  for (const l of s.layers) if (l.note) out.push(`  layer ${l.path}: ${l.note}`);
  return out.join('\n');
}
