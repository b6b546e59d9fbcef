/**
 * Conversion of a trained quantized Sequential into a deployable model: 1-bit weights packed 32
 * per word (+ per-channel scale), ternary weights as two bit planes, int8 weights with scales,
 * BatchNorm folded into per-channel multiplier/bias, and BN + sign folded into per-channel
 * integer thresholds when the next layer binarizes its input. `runDeployed` (runtime.ts) executes it
 * with the packed kernels; `encodeDeployed`/`decodeDeployed` (src/io/deployed-format.ts) are the file format.
 *
 * @example
 * const deployed = convert(model);                 // model: trained larqMnistBnn()
 * const bytes = encodeDeployed(deployed);          // ≈13.3 KiB
 * const logits = runDeployed(decodeDeployed(bytes), images, [n, 1, 28, 28]);
 */
import type { FloatArray } from '../core/dtype.js';
import { scope } from '../core/scope.js';
import { noGrad } from '../autograd/mode.js';
import { BatchNorm, Conv2d, Lambda, Linear, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { BasicBlock } from '../nn/models.js';
import { packSignRows, packTernaryRows, packWeightsOHWI } from './kernels.js';
import { isQuantLayer, MaxPool2dLayer } from './layers.js';
import { roundHalfAway } from './ops.js';
import { layerPlan } from './plan.js';
import type { DeployedModel, MatStage, Stage } from './runtime.js';

export type { DeployedModel, MatStage, Stage } from './runtime.js';

/** Per-channel scale and shift of a BatchNorm in eval mode: y·g + h. */
function bnAffine(bn: BatchNorm): { g: Float64Array; h: Float64Array } {
  const gamma = bn.gamma.values(), beta = bn.beta.values(), mean = bn.runningMean.values(), variance = bn.runningVar.values();
  const g = Float64Array.from(gamma, (v, c) => v / Math.sqrt(variance[c]! + bn.eps));
  const h = Float64Array.from(beta, (v, c) => v - mean[c]! * g[c]!);
  return { g, h };
}

/** Weights and epilogue of one conv/dense layer (before BatchNorm folding). */
function convertLayer(layer: Linear | Conv2d): MatStage {
  const plan = layerPlan(layer)!;
  const outC = layer.weight.shape[0]!;
  const inC = layer.weight.shape[1]!;
  const isConv = layer instanceof Conv2d;
  let k = 0, stride = 1, pad = 0;
  if (isConv) {
    const o = layer.options;
    const one = (v: number | [number, number] | undefined, d: number, what: string): number => {
      const [a, b] = v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
      if (a !== b) throw new Error(`convert: layer ${layer.path}: non-square ${what} [${a}, ${b}] is not supported`);
      return a;
    };
    if ((o.groups ?? 1) !== 1 || one(o.dilation, 1, 'dilation') !== 1) throw new Error(`convert: layer ${layer.path}: groups/dilation are not supported`);
    if (layer.weight.shape[2] !== layer.weight.shape[3]) throw new Error(`convert: layer ${layer.path}: non-square kernel`);
    k = layer.weight.shape[2]!;
    stride = one(o.stride, 1, 'stride');
    pad = one(o.padding, 0, 'padding');
  }
  const rows = outC, K = isConv ? inC * k * k : inC;
  const mul = new Float32Array(outC).fill(1);
  const bias = layer.bias ? Float32Array.from(layer.bias.values()) : new Float32Array(outC);
  const kq = isQuantLayer(layer) ? layer.kernelQuantizer : null;
  const iq = isQuantLayer(layer) ? layer.inputQuantizer : null;
  let weights: MatStage['weights'];
  let inputStep = 0;
  const kd = kq?.deployment(), xd = iq?.deployment();
  // The values to pack: the latent weight, or what the quantizer binarizes (IR-Net: balanced weights).
  const w = (kd?.latent ? noGrad(() => scope(() => Float32Array.from(kd.latent!(layer.weight).values()))) : layer.weight.values()) as FloatArray;
  const scale = noGrad(() =>
    scope(() => {
      const s = plan.channelScale ? kd?.channelScale?.(layer.weight) : null;
      return s ? Float32Array.from(s.values()) : null;
    }),
  );
  if (scale) mul.set(scale);
  switch (plan.kernel) {
    case 'binary':
      weights = isConv ? packWeightsOHWI(w, outC, inC, k) : packSignRows(w, rows, K);
      break;
    case 'binary_weights':
      weights = packSignRows(w, rows, K);
      break;
    case 'ternary_weights': {
      const delta = kd!.threshold!(layer.weight);
      weights = packTernaryRows(Array.from(w, (v) => (v >= delta ? 1 : v <= -delta ? -1 : 0)), rows, K);
      break;
    }
    case 'int8': {
      const ws = kd!.step!(), xs = xd!.step!();
      weights = Int8Array.from(w, (v) => Math.min(127, Math.max(-128, roundHalfAway(v / ws))));
      inputStep = xs;
      mul.fill(ws * xs);
      break;
    }
    case 'float':
      // Plain layers keep their weights; unsupported fake quantizers are applied once here.
      weights = kq ? noGrad(() => scope(() => Float32Array.from(kq.forward(layer.weight).values()))) : Float32Array.from(w);
      if (iq) return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, inputStep, mul, bias, inputQuantizer: iq.config() };
      break;
  }
  return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, inputStep, mul, bias };
}

/** The window of a max-pool the runtime's pool stage runs (stride = window, no padding), else null. */
function poolKernel(l: Module | undefined): number | null {
  if (l instanceof MaxPool2dLayer) return l.kernel;
  const o = l instanceof Lambda && l.label === 'maxpool2d' ? (l.attrs as { kernel: unknown; stride?: unknown; padding?: unknown }) : null;
  return o && typeof o.kernel === 'number' && (o.stride ?? o.kernel) === o.kernel && !o.padding ? o.kernel : null;
}

/** Whether `layers[from...]` reaches a layer that binarizes its input through shape-only/monotone stages. */
function nextBinarizes(layers: readonly Module[], from: number): boolean {
  for (let i = from; i < layers.length; i++) {
    const l = layers[i]!;
    if (poolKernel(l) !== null || (l instanceof Lambda && l.label === 'flatten')) continue;
    return (l instanceof Linear || l instanceof Conv2d) && layerPlan(l)!.kernel === 'binary';
  }
  return false;
}

/**
 * The deployable form of a trained Sequential (eval-mode semantics: BatchNorm uses running
 * statistics). Supported layers: QuantConv2d/QuantLinear/Conv2d/Linear, BatchNorm, max-pooling with
 * stride = window (MaxPool2dLayer, nn MaxPool2d), ReLU, Flatten and global average pooling (nn Lambdas), and ResNet BasicBlocks (a residual stage
 * holding the converted body and shortcut, then a ReLU stage).
 */
export function convert(model: Module, inputShape: number[]): DeployedModel {
  if (!(model instanceof Sequential)) throw new Error(`convert: expects a Sequential model, got ${model.constructor.name}`);
  return { inputShape: [...inputShape], stages: convertLayers(model.layers) };
}

function convertLayers(layers: readonly Module[]): Stage[] {
  const stages: Stage[] = [];
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    if (l instanceof Linear || l instanceof Conv2d) {
      const s = convertLayer(l);
      // Fold the BatchNorm that follows, directly or across max-pools when the combined scale is
      // positive everywhere (max commutes with an increasing affine map).
      let j = i + 1;
      while (poolKernel(layers[j]) !== null) j++;
      const pools = layers.slice(i + 1, j), bn = layers[j];
      let last = i;
      if (bn instanceof BatchNorm) {
        const { g, h } = bnAffine(bn);
        if (pools.length === 0 || s.mul!.every((m, c) => m * g[c]! > 0)) {
          for (let c = 0; c < s.outC; c++) {
            s.bias![c] = s.bias![c]! * g[c]! + h[c]!;
            s.mul![c] = s.mul![c]! * g[c]!;
          }
          last = j;
        }
      }
      // sign(max(z)) = max(sign(z)): thresholds may precede the pools.
      if (nextBinarizes(layers, last + 1)) toThresholds(s);
      stages.push(s);
      if (last === j) pools.forEach((p) => stages.push(...convertSimple(p)));
      i = last;
      continue;
    }
    if (l instanceof BasicBlock) {
      stages.push({ op: 'residual', body: convertLayers(l.body.layers), shortcut: l.shortcut ? convertLayers(l.shortcut.layers) : [] }, ...(l.relu ? [{ op: 'relu' } as const] : []));
      continue;
    }
    stages.push(...convertSimple(l));
  }
  return stages;
}

function convertSimple(l: Module): Stage[] {
  const k = poolKernel(l);
  if (k !== null) return [{ op: 'maxpool', k }];
  if (l instanceof BatchNorm) {
    const { g, h } = bnAffine(l);
    return [{ op: 'affine', mul: Float32Array.from(g), bias: Float32Array.from(h) }];
  }
  if (l instanceof Lambda && (l.label === 'relu' || l.label === 'flatten')) return [{ op: l.label }];
  if (l instanceof Lambda && l.label === 'global_avgpool2d') return [{ op: 'gap' }];
  throw new Error(`convert: layer ${l.path} (${l instanceof Lambda ? l.label : l.constructor.name}) is not supported (supported: conv/linear, BatchNorm, max-pooling with stride = window, relu, flatten, global average pooling, ResNet BasicBlock)`);
}

/**
 * sign(acc·mul + bias) as a compare on acc. mul > 0: acc ≥ −bias/mul; mul < 0: acc ≤ −bias/mul;
 * mul = 0: constant sign(bias). Integer accumulators (binary, int8) get integer thresholds
 * (ceil / floor), so the compare stays integer-only.
 */
function toThresholds(s: MatStage): void {
  const integer = s.kernel === 'binary' || s.kernel === 'int8';
  const threshold = integer ? new Int32Array(s.outC) : new Float32Array(s.outC);
  const direction = new Int8Array(s.outC);
  for (let c = 0; c < s.outC; c++) {
    const m = s.mul![c]!, b = s.bias![c]!;
    if (m === 0) {
      threshold[c] = b >= 0 ? 0 : -1;
      continue;
    }
    const t = -b / m;
    threshold[c] = integer ? (m > 0 ? Math.ceil(t) : Math.floor(t)) : t;
    direction[c] = m > 0 ? 1 : -1;
  }
  delete s.mul;
  delete s.bias;
  s.threshold = threshold;
  s.direction = direction;
}

// ---------------------------------------------------------------------------------------------
// Execution
